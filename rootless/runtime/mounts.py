"""The container's file system view: a plan of small operations, then one loop that
applies them (bubblewrap's shape). Runs in the container's first process, as root of its
user namespace, inside a mount namespace of its own, before ``pivot_root``.

Why this order: the rootfs must be a mount point for pivot_root, so it is bind-mounted
onto itself first; /dev is a fresh tmpfs, so the device binds and devpts come after it;
masked and read-only paths come after /proc and /sys exist; a read-only rootfs is
remounted last, after every mount point it needs has been created in it.

Every target is resolved inside the rootfs (``secure_join``): an image that makes
/etc/hosts a symlink to /home/you/.bashrc gets its own file, never a mount on the host's.
"""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List, Tuple
    Op = Tuple  # (kind, ...) see apply()

from rootless.errors import RootlessError
from rootless.paths import unescape_mountinfo

MAX_LINKS = 40
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("core", "/proc/kcore"), ("ptmx", "pts/ptmx"))


def secure_join(root: str, path: str) -> str:
    """``root/path`` with every symlink on the way resolved as if ``root`` were /."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: List[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS:
                raise RootlessError("too many symlinks resolving %s in the container" % path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def plan(spec: dict, rootfs: str, bundle: str, devpts_gid=None) -> List[Op]:
    """The operations for ``config.json`` ``spec``, in order. Relative bind sources are
    relative to the ``bundle`` directory; ``devpts_gid`` is the group of new ptys (the
    tty group, where the id mapping has one)."""
    from rootless.linux import mount as m
    ops: List[Op] = [("bind", rootfs, rootfs, m.MS_REC)]
    by_dest = {mnt["destination"]: mnt for mnt in spec.get("mounts", [])}
    for mnt in spec.get("mounts", []):
        dest, kind = mnt["destination"], mnt["type"]
        flags, data = _flags(mnt.get("options", []))
        if kind == "devpts" and devpts_gid is not None:
            data += ",gid=%d" % devpts_gid
        if kind == "bind":
            ops.append(("bind", os.path.join(bundle, mnt["source"]), dest, flags | m.MS_REC))
        elif kind == "sysfs":
            ops.append(("sysfs", dest, flags))
        elif kind == "cgroup2":
            ops.append(("cgroup2", dest, flags))
        else:
            ops.append(("mount", mnt["source"], dest, kind, flags, data))
        if dest == "/dev":
            ops += [("device", "/dev/" + d, "/dev/" + d) for d in DEVICES]
            ops += [("symlink", target, "/dev/" + name) for name, target in DEV_LINKS
                    if "/dev/pts" in by_dest or name != "ptmx"]
    linux = spec.get("linux", {})
    ops += [("mask", p) for p in linux.get("maskedPaths", [])]
    ops += [("readonly", p) for p in linux.get("readonlyPaths", [])]
    return ops


_OPTION_FLAGS = {"ro": 0x1, "nosuid": 0x2, "nodev": 0x4, "noexec": 0x8, "strictatime": 1 << 24,
                 "relatime": 1 << 21, "noatime": 0x400, "rbind": 0x1000 | 0x4000, "bind": 0x1000}


def _flags(options) -> Tuple[int, str]:
    flags, data = 0, []
    for opt in options:
        if opt in _OPTION_FLAGS:
            flags |= _OPTION_FLAGS[opt]
        elif opt not in ("rw", "private", "rprivate"):
            data.append(opt)
    return flags, ",".join(data)


def apply(ops: List[Op], rootfs: str, debug=None) -> None:
    from rootless.linux import mount as m
    for op in ops:
        if debug:
            debug("mount plan: %s" % (op,))
        kind = op[0]
        try:
            if kind == "bind":
                _, src, dest, flags = op
                target = dest if dest == rootfs else _target(rootfs, dest, os.path.isdir(src))
                m.mount(src, target, None, m.MS_BIND | (flags & m.MS_REC))
                if flags & m.MS_RDONLY:
                    (_remount_tree_readonly if flags & m.MS_REC else m.remount_readonly)(target)
            elif kind == "mount":
                _, src, dest, fstype, flags, data = op
                m.mount(src, _target(rootfs, dest, True), fstype, flags, data or None)
            elif kind == "sysfs":
                _sysfs(rootfs, op[1], op[2])
            elif kind == "cgroup2":
                _cgroup2(rootfs, op[1], op[2])
            elif kind == "device":
                m.mount(op[1], _target(rootfs, op[2], False), None, m.MS_BIND)
            elif kind == "symlink":
                path = secure_join(rootfs, op[2])
                if not os.path.lexists(path):
                    os.symlink(op[1], path)
            elif kind == "mask":
                _mask(rootfs, op[1])
            elif kind == "readonly":
                path = secure_join(rootfs, op[1])
                if os.path.exists(path):
                    m.mount(path, path, None, m.MS_BIND | m.MS_REC)
                    _remount_tree_readonly(path)
        except OSError as e:
            raise RootlessError("setting up the container's %s %s failed: %s"
                                % (kind, op[-1] if kind in ("mask", "readonly") else op[2], e.strerror or e))


def _target(rootfs: str, dest: str, directory: bool) -> str:
    """The mount point for ``dest`` inside the rootfs, created if missing."""
    path = secure_join(rootfs, dest)
    if not os.path.lexists(path):
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        if directory:
            os.mkdir(path, 0o755)
        else:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644))
    return path


def _sysfs(rootfs: str, dest: str, flags: int) -> None:
    """A fresh sysfs needs a network namespace of our own; sharing the host's network, we
    bind the host's /sys instead (read-only), as rootless podman does."""
    from rootless.linux import mount as m
    target = _target(rootfs, dest, True)
    try:
        m.mount("sysfs", target, "sysfs", flags)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EACCES):
            raise
        m.mount("/sys", target, None, m.MS_BIND | m.MS_REC)
        if flags & m.MS_RDONLY:
            _remount_tree_readonly(target)


def _cgroup2(rootfs: str, dest: str, flags: int) -> None:
    """cgroup2 as the container's cgroup namespace shows it (its own cgroup as the root),
    mounted read-write, then that one mount made read-only if asked (the hierarchy has one
    superblock, read-write on the host, which a read-only mount would have to change)."""
    from rootless.linux import mount as m
    target = _target(rootfs, dest, True)
    try:
        m.mount("cgroup2", target, "cgroup2", flags & ~m.MS_RDONLY)
    except OSError as e:
        # The host's own cgroup2 mount is there (a bind of the host's /sys): the kernel
        # refuses the same file system again on the root of its mount. A tmpfs between.
        if e.errno != errno.EBUSY:
            raise
        m.mount("tmpfs", target, "tmpfs", flags & ~m.MS_RDONLY, "size=0k,mode=0755")
        m.mount("cgroup2", target, "cgroup2", flags & ~m.MS_RDONLY)
    if flags & m.MS_RDONLY:
        m.remount_readonly(target)


def _remount_tree_readonly(target: str) -> None:
    """Make the bind mount at ``target`` and every mount below it read-only. A recursive
    bind brings the submounts along (the host's /sys/fs/cgroup and its hierarchies), and a
    bind remount changes one mount only; mountinfo lists parents before their children.
    Where the kernel has mount_setattr (5.12), one recursive call does it all.

    A submount that cannot be reached (hidden under a later mount, or below a directory
    only the host's root may search, as /sys/kernel/debug) is skipped: the container
    cannot reach it either, its root being no more than you on the host's files."""
    from rootless.linux import mount as m
    if m.set_tree_readonly(target):
        return  # one mount_setattr: no mountinfo to read, no remount for each submount
    m.remount_readonly(target)
    below = target.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [unescape_mountinfo(line.split(" ")[4]) for line in f]
    for point in points:
        if point.startswith(below):
            try:
                m.remount_readonly(point)
            except OSError as e:
                if e.errno not in (errno.ENOENT, errno.EACCES):
                    raise


def _mask(rootfs: str, path: str) -> None:
    from rootless.linux import mount as m
    target = secure_join(rootfs, path)
    if not os.path.exists(target):
        return
    if os.path.isdir(target) and not os.path.islink(target):
        m.mount("tmpfs", target, "tmpfs", m.MS_RDONLY, "size=0k,mode=0555")
    else:
        m.mount("/dev/null", target, None, m.MS_BIND)


def copy_up(rootfs: str, pairs) -> None:
    """Fill each empty volume directory of ``pairs`` ([destination, directory]) with the
    image's content at that destination (Docker's copy on first use): files, directories
    and symlinks with their modes and, where the id mapping has them, their owners. Read
    inside the rootfs without following its symlinks (``secure_join``, then lstat only),
    written only below the volume's directory."""
    for dest, volume in pairs:
        src = secure_join(rootfs, dest)
        try:
            st = os.lstat(src)
            if not stat.S_ISDIR(st.st_mode) or os.listdir(volume):
                continue  # nothing to copy, or used already
        except FileNotFoundError:
            continue  # no such path in the image (a missing volume fails at its bind)
        try:
            _copy_dir(src, volume, st)
        except OSError as e:
            raise RootlessError("filling the volume at %s from the image failed: %s" % (dest, e.strerror or e))


def _copy_dir(src: str, dst: str, st) -> None:
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    _owner(dst, st)
    with os.scandir(src) as it:
        entries = list(it)
    for entry in entries:
        s, d = os.path.join(src, entry.name), os.path.join(dst, entry.name)
        est = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(est.st_mode):
            os.mkdir(d, 0o700)
            _copy_dir(s, d, est)
        elif stat.S_ISLNK(est.st_mode):
            os.symlink(os.readlink(s), d)
            _owner(d, est)
        elif stat.S_ISREG(est.st_mode):
            fd_in = os.open(s, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                fd_out = os.open(d, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    while os.sendfile(fd_out, fd_in, None, 1 << 20):
                        pass
                    os.fchmod(fd_out, stat.S_IMODE(est.st_mode))
                finally:
                    os.close(fd_out)
            finally:
                os.close(fd_in)
            _owner(d, est)
        # devices, fifos and sockets are not copied (Docker's copy skips them too)


def _owner(path: str, st) -> None:
    try:
        os.lchown(path, st.st_uid, st.st_gid)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EPERM):  # an id the mapping does not have
            raise


def pivot(rootfs: str) -> None:
    """Make ``rootfs`` the root and detach the old one (runc's pivot_root(".", ".") way:
    no directory for the old root is needed, so a read-only rootfs works too)."""
    from rootless.linux import mount as m
    old = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.chdir(rootfs)
        m.pivot_root(".", ".")
        os.fchdir(old)
        # The old root must not propagate its unmount to anything: make it a slave first.
        m.mount(None, ".", None, m.MS_SLAVE | m.MS_REC)
        m.umount(".", m.MNT_DETACH)
    finally:
        os.close(old)
    os.chdir("/")
