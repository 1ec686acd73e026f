"""pidfd_open(2): a file descriptor for a process, readable once the process has ended.

Unlike a pid, it cannot come to mean another process after the first one is reaped, and
epoll can wait on it. Linux 5.3 and later; Python has ``os.pidfd_open`` from 3.9, below that
the raw system call is made (its number is the same on every architecture: 434).
"""

import os

SYS_PIDFD_OPEN = 434


def pidfd_open(pid: int) -> int:
    """A close-on-exec pidfd for ``pid``; OSError ENOSYS on kernels before 5.3, ESRCH
    when there is no such process."""
    if hasattr(os, "pidfd_open"):
        return os.pidfd_open(pid)  # novermin (Python >= 3.9 only; guarded)
    return syscall_pidfd_open(pid)


def syscall_pidfd_open(pid: int) -> int:
    """The same through libc's syscall(2), for Pythons before 3.9."""
    import ctypes
    from rootless.linux.libc import check, libc
    fn = libc().syscall
    fn.restype = ctypes.c_long
    return check(fn(ctypes.c_long(SYS_PIDFD_OPEN), ctypes.c_long(pid), ctypes.c_uint(0)),
                 "pidfd_open")
