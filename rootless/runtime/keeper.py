"""K, the keeper: builds a container's namespaces and root file system, then hands over.

Forked by the parent (the CLI in the foreground, the monitor for ``-d``; see
``runtime.launch`` for the whole sequence). K becomes root of a new user namespace (the
parent writes its maps), makes a mount namespace whose mounts can never reach the host,
mounts the rootfs (the driver's job), unshares the rest of ``linux.namespaces`` and forks
the container's first process P as a *sibling* (``ns.fork_sibling``): P is pid 1 of the
new pid namespace and the parent's own child, so the parent waits for it directly.

The rootfs is mounted before the pid namespace exists, so that a fuse-overlayfs process
stays outside it, invisible to the container. With fuse-overlayfs K stays, holding that
process, until the parent kills it after P's end (both die with the parent, by their
parent-death signal); with the other drivers K exits as soon as P's pid is sent, and the
mounts live on in P's namespaces, which end with P's pid namespace.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict, List

from rootless.errors import RootlessError
from rootless.linux import caps, mount, ns, signals, sync
from rootless.runtime import init


def main(bundle, chan, parent: int, debug=None) -> int:
    for name in init.FORWARDED:  # the parent's handlers are not ours
        if hasattr(signals, name):
            signals.signal(getattr(signals, name), signals.SIG_DFL)
    os.setsid()  # out of the terminal's process group: its ^C is for the container's
    caps.set_pdeathsig(signals.SIGKILL)
    # The kernel signals only for a parent that dies after the call. An orphan is adopted
    # by init or by a subreaper (systemd --user, tmux...), so compare with the parent's pid.
    if os.getppid() != parent:
        return 1
    joined = _join_user(bundle.join)
    if joined is None:
        ns.unshare(ns.CLONE_NEWUSER)
        sync.send(chan, "map")
        reply = sync.recv(chan)
        sync.raise_error(reply)
        if not reply or reply.get("op") != "mapped":
            return 125
    ns.unshare(ns.CLONE_NEWNS)
    # Mounts made from here must never reach the host's namespace, whatever its
    # propagation (the host's / may be shared).
    mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
    driver = _driver(bundle)
    rootfs = driver.mount(bundle.dir, [(d, {}) for d in bundle.layers], bundle.volatile) if driver else bundle.root
    if not os.path.isdir(rootfs):
        raise RootlessError("the bundle's root.path %s is not a directory" % rootfs)
    if bundle.cgroup:  # the parent moves us into the container's cgroup, before its namespace
        sync.send(chan, "cgroup")
        sync.raise_error(sync.recv(chan))
    _unshare_rest(bundle.namespaces)
    joins_network = any(flag == ns.CLONE_NEWNET for _, flag in joined or ())
    if joined:
        ns.join(joined)  # the other's network or pid namespace: its user namespace owns them
    if "network" in bundle.namespaces and not joins_network:
        ns.loopback_up()  # a network namespace of its own (a --pid container:NAME joiner's too)
    set_sysctls(bundle.sysctl)
    if bundle.owners and not os.path.exists(bundle.owners + ".applied"):
        apply_owners(rootfs, _read_owners(bundle.owners), bundle.owners + ".applied")
    pid = ns.fork_sibling()
    if pid == 0:
        sync.child_main(lambda: init.main(bundle, chan, rootfs, debug), chan)
    sync.send(chan, "pid", pid=pid)
    chan.close()
    if getattr(driver, "proc", None) is None and (bundle.cgroup or {}).get("strategy") != "systemd":
        return 0
    # fuse-overlayfs, or a systemd scope to hold (the parent moved us to its holder cgroup:
    # systemd would remove the scope, memory.events and all, the moment it is empty)
    for sig in (signals.SIGINT, signals.SIGTERM, signals.SIGHUP, signals.SIGQUIT):
        signals.signal(sig, signals.SIG_IGN)
    while True:  # until the parent ends us
        signals.pause()


def _join_user(join):
    """``--network``/``--pid container:NAME``: enter that container's user namespace (its
    maps are already written, so there is no "map" exchange) and return what is left to
    join (its network or pid namespace, after the mount namespace is made; runtime.joins);
    None without ``join``."""
    if not join:
        return None
    user = [(fd, flag) for fd, flag in join if flag == ns.CLONE_NEWUSER]
    ns.join(user)
    return [(fd, flag) for fd, flag in join if flag != ns.CLONE_NEWUSER]


def set_sysctls(values: Dict[str, str]) -> None:
    """``linux.sysctl``: each key under /proc/sys of this process's namespaces (the keys
    were checked at create to be plain dotted words: ``network.modes.sysctls``)."""
    for key, value in sorted(values.items()):
        path = "/proc/sys/" + key.replace(".", "/")
        if ".." in key or "/" in key:
            raise RootlessError("config.json: bad sysctl key %r" % key)
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as e:
            raise RootlessError("cannot set sysctl %s=%s in the container: %s" % (key, value, e.strerror or e))


def _driver(bundle):
    if not bundle.driver:
        return None
    from rootless.storage import rootfs
    return rootfs.get(bundle.driver, bundle.squash)


def _unshare_rest(kinds: List[str]) -> None:
    flags = 0
    for kind in kinds:
        if kind not in ("user", "mount"):
            flags |= ns.FLAGS[kind]
    try:
        ns.unshare(flags)
    except OSError:
        if not flags & ns.CLONE_NEWCGROUP:
            raise
        ns.unshare(flags & ~ns.CLONE_NEWCGROUP)  # kernels without cgroup namespaces


def _read_owners(path: str) -> Dict[str, List[int]]:
    from rootless import jsonfast
    with open(path) as f:
        return jsonfast.load(f)


def apply_owners(rootfs: str, owners: Dict[str, List[int]], done: str) -> None:
    """Give image files their recorded owners, now that sub-ids are mapped (first start).
    On overlay this copies up only those entries; chown clears set-id bits, so the mode is
    put back."""
    from rootless.fsutil import real_dir_path
    for rel, (uid, gid) in sorted(owners.items()):
        path = real_dir_path(rootfs, rel)  # never through a symlink of the image
        if path is None:
            continue
        try:
            info = os.lstat(path)
            os.lchown(path, uid, gid)
            if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o6000:
                os.chmod(path, stat.S_IMODE(info.st_mode))
        except OSError:
            continue  # gone in a higher layer, or an id beyond the mapped range
    with open(done, "w"):
        pass
