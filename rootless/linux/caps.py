"""Capabilities and the prctl(2) switches a runtime sets before execve.

A container's root holds every capability of its user namespace unless the runtime takes
them away. :func:`apply` does what Docker does for the container's process: the bounding
set, effective, permitted and inheritable sets all become the kept list, and the ambient
set is emptied, so a command run as a non-root user gets no capabilities at all.

Names are the kernel's (``CAP_CHOWN``); accepting other spellings is the caller's policy.
"""

from __future__ import annotations

import ctypes
import errno

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Iterable, List

from rootless.linux.libc import call

# linux/capability.h
CAPS = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

# linux/prctl.h
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def numbers(names: Iterable[str]) -> List[int]:
    """The capability numbers of ``names``, sorted; ValueError names any unknown one. Pure."""
    names = list(names)
    unknown = sorted(set(n for n in names if n not in CAPS))
    if unknown:
        raise ValueError("unknown capabilities: %s" % ", ".join(unknown))
    return sorted(set(CAPS[n] for n in names))


def mask(names: Iterable[str]) -> int:
    """The capability bit mask of ``names`` (as /proc/self/status shows sets). Pure."""
    bits = 0
    for number in numbers(names):
        bits |= 1 << number
    return bits


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    """prctl is variadic: every argument after the option must be passed as unsigned long."""
    return call("prctl", ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                ctypes.c_ulong(0), ctypes.c_ulong(0))


def last_cap() -> int:
    """The highest capability number the running kernel knows.

    Read from /proc/sys/kernel/cap_last_cap; where /proc is not mounted, found by asking
    PR_CAPBSET_READ, which fails with EINVAL for numbers past the last.
    """
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        pass
    for number in range(63, -1, -1):
        try:
            _prctl(PR_CAPBSET_READ, number)
            return number
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
    raise OSError(errno.EINVAL, "prctl(PR_CAPBSET_READ): no capability is known")


def drop_bounding(keep: Iterable[str]) -> None:
    """Drop every capability not in ``keep`` from the bounding set (needs CAP_SETPCAP).

    The bounding set limits what any later execve can grant, whatever the file or user.
    Capabilities the kernel does not know (EINVAL) are skipped.
    """
    kept = set(numbers(keep))
    for number in range(last_cap() + 1):
        if number in kept:
            continue
        try:
            _prctl(PR_CAPBSET_DROP, number)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise


def set_caps(effective: Iterable[str], permitted: Iterable[str],
             inheritable: Iterable[str]) -> None:
    """Set the calling thread's three capability sets with capset(2), version 3.

    Version 3 carries each set as two 32-bit words, low capabilities first. The kernel
    refuses (EPERM) to add to permitted, or to add to inheritable anything outside the
    bounding set.
    """
    masks = [mask(effective), mask(permitted), mask(inheritable)]
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for word in range(2):
        shift = 32 * word
        data[word].effective, data[word].permitted, data[word].inheritable = (
            (m >> shift) & 0xFFFFFFFF for m in masks)
    call("capset", ctypes.byref(header), data)


def clear_ambient() -> None:
    """Empty the ambient set, which would otherwise carry capabilities across execve
    to a non-root user."""
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def raise_ambient(caps: Iterable[str]) -> None:
    """Add ``caps`` to the ambient set (each must already be permitted and inheritable)."""
    for number in numbers(caps):
        _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, number)


def set_no_new_privs() -> None:
    """Make execve unable to grant privileges (setuid bits, file capabilities), for good.

    Also what lets an unprivileged process install a seccomp filter.
    """
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_pdeathsig(sig: int) -> None:
    """Have the kernel send ``sig`` to this process when its parent thread exits."""
    _prctl(PR_SET_PDEATHSIG, sig)


def set_keepcaps(keep: bool) -> None:
    """Whether permitted capabilities survive a change from uid 0 to another uid."""
    _prctl(PR_SET_KEEPCAPS, 1 if keep else 0)


def apply(keep: Iterable[str]) -> None:
    """Reduce the calling process, uid 0 in its user namespace, to the ``keep`` capabilities.

    The bounding set is dropped to ``keep`` first, while CAP_SETPCAP (needed for that)
    is still effective; effective, permitted and inheritable become ``keep``; ambient is
    cleared. After execve a root command has exactly ``keep``; a non-root one has none,
    as under Docker.
    """
    keep = list(keep)
    numbers(keep)  # refuse unknown names before changing anything
    drop_bounding(keep)
    set_caps(keep, keep, keep)
    clear_ambient()
