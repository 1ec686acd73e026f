"""A view of a container's root: a worker process for which the container's root is /.

``cp`` and ``export`` need the container's files as the container sees them (its
symlinks resolved inside it, its ids) while the user's paths are on the host. So the CLI
forks a worker W that enters the container's view, and the two talk in ``linux.sync``
messages; file data crosses as a tar stream over a pipe whose one end goes with a request
(SCM_RIGHTS)::

  CLI (host, you)                         W (the container's root is /)
  ---------------                         ----------------------------------------------
  [running] open P's user+mount ns
  fork W -------------------------------> die with the CLI
                                          [running] setns(user), setns(mount): the root and
                                            cwd are the container's (runtime mounts too)
                                          [stopped] unshare(USER)
          <------------ map -------------
  strategy.write(W's maps)
          ------------- mapped ---------->  unshare(MNT); / private; rootfs mounted by the
                                            bundle's driver (read-only ``view`` for
                                            export); chroot; chdir /
                                          uid/gid 0 of the container; no more imports
          <------------ ready ------------
          ---- stat {path, follow} ------>
          <--- stat {exists, is_dir..} ---
          ---- send {path, name} + pipe -> a tar of path, named name, written to the pipe
  extract (the stream is hostile)         (copytar.TreeWriter)
          <--- sent {size} ---------------
          ---- receive {dir, top} + pipe > extract the pipe's stream into dir
  write a tar to the pipe                 (copytar.Extractor, the same rules)
          <--- received {size} -----------
  close ------------------------------->  end of file: end fuse-overlayfs, exit

Either way W is the root user of the container's id mapping: what it creates belongs to
the container's root, the headers it writes carry the container's ids, and every path it
opens, symlinks included, resolves inside the container's root and nowhere else. A
failure in W is one ``error`` message, re-raised by the CLI as the same exception.

Which view: ``cp`` of a running (or paused) container joins its namespaces, so that what
is copied in is there at once for its processes and what is copied out is what they see.
A stopped container (created, exited; restarting too, whose process is gone) gets a
mount namespace of W's own with the rootfs mounted afresh. ``export`` always takes the
fresh, read-only view: it exports the container's root file system, not the mounts made
in it at run time (/proc, /dev, /sys, the /etc/hosts binds), and a read-only overlay
whose top lower layer is the writable layer is safe to mount beside a running container
(a second read-write mount would share its work directory).

Everything W needs is imported with this module, before W changes root: after that
neither the zipapp nor the host's Python library is visible, and W empties ``sys.path``
so that a forgotten import fails instead of loading a module from the container.
"""

import os
import stat
import sys

from rootless import jsonfast
from rootless.errors import RootlessError
from rootless.linux import caps, mount, ns, signals, sync
from rootless.runtime import copytar, idmapping, state
from rootless.runtime.config import Bundle
from rootless.runtime.cprules import Seen
from rootless.storage import rootfs as rootfs_drivers

EXPORT_SKIPS = ("proc", "sys", "dev")  # their contents are the kernel's, not the container's


class View:
    """The CLI's end of a worker W (a context manager: W ends with it)."""

    def __init__(self, paths, record: dict, fresh: bool = False):
        self.containers = state.Containers(paths)
        self.record, self.fresh = record, fresh
        self.bundle = Bundle.load(self.containers.dir(record["id"]))
        self.pid = 0
        self.chan = None

    def running(self) -> bool:
        return self.record["status"] in (state.RUNNING, state.PAUSED) and state.first_process_alive(self.record)

    def __enter__(self) -> "View":
        opened = None
        if not self.fresh and self.running():
            opened = ns.open_namespaces(self.record["pid"], ["user", "mount"])
            if not state.first_process_alive(self.record):  # ended (its pid may be reused)
                for fd, _ in opened:
                    os.close(fd)
                opened = None
        mine, theirs = sync.pair()
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            mine.close()
            sync.child_main(lambda: _worker(theirs, me, self.bundle, opened, self.fresh), theirs)
        theirs.close()
        for fd, _ in opened or ():
            os.close(fd)
        self.pid, self.chan = pid, mine
        try:
            self._handshake()
        except BaseException:
            self._end(kill=True)
            raise
        return self

    def _handshake(self) -> None:
        message = self._recv()
        if message.get("op") == "map":
            idmapping.get(self.bundle.idmap).write(self.pid, self.bundle.uid_map, self.bundle.gid_map)
            sync.send(self.chan, "mapped")
            message = self._recv()
        if message.get("op") != "ready":
            raise RootlessError("the view of container %s said %r" % (self.record["name"], message.get("op")))

    def _recv(self) -> dict:
        message = sync.recv(self.chan)
        if message is None:
            code = self._end()
            raise RootlessError("the view of container %s ended without a word (exit %s)"
                                % (self.record["name"], code))
        sync.raise_error(message)
        return message

    def __exit__(self, kind, value, tb) -> None:
        self._end(kill=kind is not None)

    def _end(self, kill: bool = False):
        """Close the channel (W exits at its end) and reap W; its exit code."""
        if self.chan is not None:
            self.chan.close()
            self.chan = None
        if not self.pid:
            return None
        if kill:
            try:
                os.kill(self.pid, signals.SIGKILL)
            except OSError:
                pass
        pid, self.pid = self.pid, 0
        while True:
            try:
                status = os.waitpid(pid, 0)[1]
                return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
            except ChildProcessError:
                return None
            except InterruptedError:
                continue

    # -- requests -------------------------------------------------------------------------

    def stat(self, path: str, follow: bool = True) -> Seen:
        """What the container has at ``path`` (a symlink at its end followed with ``follow``)."""
        sync.send(self.chan, "stat", path=path, follow=follow)
        return Seen.from_json(self._recv())

    def send(self, path: str, name: str, sink, follow: bool = False, skips=()) -> int:
        """A tar of the container's ``path``, its top named ``name``, read by ``sink(fileobj)``
        on this side (whose result is returned) while W writes it."""
        read_end, write_end = os.pipe()
        try:
            sync.send(self.chan, "send", fds=[write_end], path=path, name=name, follow=follow, skips=list(skips))
        finally:
            os.close(write_end)
        with os.fdopen(read_end, "rb") as stream:
            try:
                result = sink(stream)
            except Exception:
                stream.close()  # W's next write fails, if it was not done
                self._raise_pending()
                raise
        self._recv()
        return result

    def _raise_pending(self) -> None:
        """After this side failed on a stream: W's own error, when W failed first (a
        stream cut short says less than why W cut it)."""
        self.chan.settimeout(10)
        try:
            message = sync.recv(self.chan)
        except OSError:
            return
        finally:
            self.chan.settimeout(None)
        if message and message.get("op") == "error" and message.get("type") != "BrokenPipeError":
            raise sync.rebuild(message)

    def receive(self, directory: str, source, top=None, owners: bool = False, keep_setid: bool = False) -> int:
        """Have W extract into its ``directory`` the tar stream ``source(fileobj)`` writes
        on this side; the bytes of file content W wrote."""
        read_end, write_end = os.pipe()
        try:
            sync.send(self.chan, "receive", fds=[read_end], dir=directory, top=top, owners=owners,
                      keep_setid=keep_setid)
        finally:
            os.close(read_end)
        try:
            with os.fdopen(write_end, "wb") as stream:
                source(stream)
        except BrokenPipeError:
            pass  # W stopped reading: its reply says why
        return self._recv().get("size", 0)


# -- the worker ---------------------------------------------------------------------------------


def _worker(chan, parent: int, bundle, opened, fresh: bool) -> int:
    for sig in (signals.SIGINT, signals.SIGTERM, signals.SIGHUP, signals.SIGQUIT, signals.SIGPIPE):
        signals.signal(sig, signals.SIG_DFL if sig != signals.SIGPIPE else signals.SIG_IGN)
    caps.set_pdeathsig(signals.SIGKILL)
    if os.getppid() != parent:  # the CLI died before the signal was armed
        return 1
    driver, owners = None, None
    if opened is not None:
        ns.join(opened)  # user first, then mount: the root and cwd become the container's
    else:
        owners = _pending_owners(bundle)
        driver = _enter_fresh(chan, bundle, fresh)
    _become_root()
    # From here the host's files are out of sight: nothing more may be imported.
    sys.path[:] = []
    sys.path_importer_cache.clear()
    try:
        sync.send(chan, "ready")
        _serve(chan, owners)
    finally:
        if driver is not None:
            driver.release()
    return 0


def _enter_fresh(chan, bundle, fresh: bool):
    """Root of a new user namespace with the container's mapping, a mount namespace of our
    own, the rootfs mounted in it and made our root. The driver (to release), if any."""
    ns.unshare(ns.CLONE_NEWUSER)
    sync.send(chan, "map")
    reply = sync.recv(chan)
    sync.raise_error(reply)
    if not reply or reply.get("op") != "mapped":
        raise RootlessError("the id mapping of the view was not written")
    ns.unshare(ns.CLONE_NEWNS)
    # Nothing mounted from here may reach the host's namespace (its / may be shared).
    mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
    driver = rootfs_drivers.get(bundle.driver, bundle.squash) if bundle.driver else None
    layers = [(d, {}) for d in bundle.layers]
    if driver is None:
        root = bundle.root
    else:
        root = driver.view(bundle.dir, layers) if fresh else driver.mount(bundle.dir, layers, bundle.volatile)
    if not os.path.isdir(root):
        raise RootlessError("the container's root file system %s is not a directory" % root)
    # chroot, not pivot_root: no process of the container runs in this namespace, and W
    # runs no code of the container; every lookup it makes resolves inside the new root.
    os.chroot(root)
    os.chdir("/")
    return driver


def _pending_owners(bundle):
    """The image's file owners when the container has never started in sub-id mode (its
    first start applies them; until then the files are all the container root's): what
    an export's headers should say. None when there is nothing pending."""
    if not bundle.owners or os.path.exists(bundle.owners + ".applied"):
        return None
    try:
        with open(bundle.owners, "rb") as f:
            return {rel: tuple(ids) for rel, ids in jsonfast.loads(f.read()).items()}
    except (OSError, ValueError):
        return None


def _become_root() -> None:
    """uid and gid 0 of the container (with --userns=keep-id, your id is not 0 inside);
    where 0 is not mapped (single-uid keep-id) we stay who we are."""
    if os.getuid() == 0 and os.getgid() == 0:
        return
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError:
        pass


def _serve(chan, owners=None) -> None:
    while True:
        message, fds = sync.recv(chan, want_fds=True)
        if message is None:
            return
        op = message.get("op")
        try:
            if op == "stat":
                sync.send(chan, "stat", **stat_path(message["path"], message.get("follow", True)).to_json())
            elif op == "send":
                with os.fdopen(fds.pop(), "wb") as out:
                    size = copytar.write_tree(out, message["path"], message["name"], message.get("follow", False),
                                              skip_contents=message.get("skips") or (),
                                              owners=owners if message["path"] == "/" else None)
                sync.send(chan, "sent", size=size)
            elif op == "receive":
                with os.fdopen(fds.pop(), "rb") as source:
                    size = copytar.extract(source, message["dir"], message.get("top"), message.get("owners", False),
                                           message.get("keep_setid", False))
                sync.send(chan, "received", size=size)
            else:
                raise RootlessError("the view was asked for %r" % op)
        finally:
            for fd in fds:
                os.close(fd)


def stat_path(path: str, follow: bool) -> Seen:
    """What is at ``path``, seen from wherever this runs (``cp``'s host side too)."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        parent = os.path.dirname(path.rstrip("/")) or "/"
        try:
            parent_is_dir = stat.S_ISDIR(os.stat(parent).st_mode)
        except OSError:
            parent_is_dir = False
        link = os.readlink(path) if os.path.islink(path) else None  # a dangling symlink
        return Seen(False, parent_is_dir=parent_is_dir, link=link)
    link = os.readlink(path) if follow and os.path.islink(path) else None
    return Seen(True, stat.S_ISDIR(st.st_mode), True, link)
