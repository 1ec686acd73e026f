"""mount(2) and umount2(2)."""

import ctypes
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
