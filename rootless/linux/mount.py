"""mount(2) and umount2(2)."""

from __future__ import annotations

import ctypes
import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Optional

from rootless.linux.libc import call

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MNT_DETACH = 0x2


def _c(text: Optional[str]):
    return None if text is None else ctypes.c_char_p(text.encode())


def mount(source: Optional[str], target: str, fstype: Optional[str], flags: int = 0,
          data: Optional[str] = None) -> None:
    call("mount", _c(source), _c(target), _c(fstype), ctypes.c_ulong(flags), _c(data), path=target)


def umount(target: str, flags: int = 0) -> None:
    call("umount2", _c(target), ctypes.c_int(flags), path=target)


MS_STRICTATIME = 1 << 24
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_RELATIME = 1 << 21

# statvfs f_flag bits -> the MS_ flags a bind remount must repeat: in a user namespace the
# kernel refuses a remount that would clear a flag the mount was locked with.
_LOCKED = ((os.ST_RDONLY, MS_RDONLY), (os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
           (os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
           (os.ST_RELATIME, MS_RELATIME))

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217, "riscv64": 41}


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2); glibc has no wrapper, so it goes through syscall(2)."""
    nr = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise OSError(38, "pivot_root: unsupported machine %s" % os.uname().machine)
    call("syscall", ctypes.c_long(nr), _c(new_root), _c(put_old), path=new_root)


# mount_setattr(2), Linux 5.12: the same number on every architecture.
_SYS_MOUNT_SETATTR = 442
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def set_tree_readonly(path: str) -> bool:
    """Make the mount at ``path`` and every mount below it read-only in one call (only the
    read-only flag is set: nothing to repeat, nothing locked to clear). False where the
    kernel (or a seccomp filter around us) refuses mount_setattr: then the caller remounts
    each mount itself."""
    attr = _MountAttr(_MOUNT_ATTR_RDONLY, 0, 0, 0)
    try:
        call("syscall", ctypes.c_long(_SYS_MOUNT_SETATTR), ctypes.c_int(_AT_FDCWD), _c(path),
             ctypes.c_uint(_AT_RECURSIVE), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), path=path)
    except OSError:
        return False
    return True


def current_flags(path: str) -> int:
    """The MS_ flags ``path``'s mount has now (for a bind remount that keeps them)."""
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in _LOCKED if f_flag & st)


def remount_readonly(path: str) -> None:
    """Make the bind mount at ``path`` read-only, keeping its other flags."""
    mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | current_flags(path))
