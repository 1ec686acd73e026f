"""Seccomp user notification: a filter that asks another process what some calls return.

A filter installed with SECCOMP_FILTER_FLAG_NEW_LISTENER hands back a *listener* fd; every
call the filter marks SECCOMP_RET_USER_NOTIF then waits in the kernel until whoever holds
the listener answers it (``recv`` it, act, ``respond``): with a return value, an errno, or
"carry on" (``CONTINUE``, the kernel runs the call as made). ``add_fd`` puts a file of the
supervisor's into the caller's fd table, in place of one of its fds if asked. Once no
process holds the listener, a marked call fails with ENOSYS. Linux 5.9 and later (5.0 for
the notification itself, 5.9 for add_fd).

The program (:func:`supervised_program`) marks what ``network.bypass`` needs to hand a
container's server a socket of the host's and keep that socket from ever becoming a way
out (see there): bind, connect and shutdown(SHUT_RD or SHUT_RDWR); io_uring_setup fails
with ENOSYS, since io_uring's operations would get past any filter of calls. x86_64 only
(with its i386 and x32 ABIs: the i386 ``socketcall`` multiplexer, whose arguments the
filter cannot see, fails with ENOSYS, and C libraries since 2015 use the direct calls);
:func:`supported` says whether this machine has it. Pure data, tested without the kernel;
the rest is thin ioctl wrappers.
"""

from __future__ import annotations

import ctypes
import os
import struct

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List, Union

from rootless.linux import seccomp
from rootless.linux.libc import check, libc

SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
SECCOMP_ADDFD_FLAG_SETFD = 1

# _IOWR('!', 0, struct seccomp_notif) and the rest, from linux/seccomp.h
NOTIF_RECV = 0xC0502100
NOTIF_SEND = 0xC0182101
NOTIF_ID_VALID = 0x40082102
NOTIF_ADDFD = 0x40182103

AUDIT_ARCH_I386 = 0x40000003
ENOSYS = 38
SHUT_RD, SHUT_RDWR = 0, 2

SYS_SECCOMP = {"x86_64": 317}
# name -> (x86_64 number, i386 number); x32 uses the x86_64 numbers with the x32 bit
CALLS = {"bind": (49, 361), "connect": (42, 362), "shutdown": (48, 373)}
IO_URING_SETUP = 425  # the same on both
I386_SOCKETCALL = 102

# struct seccomp_notif { u64 id; u32 pid; u32 flags; struct seccomp_data data; }
# struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }
NOTIF = struct.Struct("=QIIiIQ6Q")
RESP = struct.Struct("=QqiI")  # id, val, error, flags
ADDFD = struct.Struct("=QIIII")  # id, flags, srcfd, newfd, newfd_flags


def supported(machine: str) -> bool:
    return machine in SYS_SECCOMP


def supervised_program(machine: str) -> bytes:
    """The filter for ``machine`` as packed struct sock_filter (see the module's text)."""
    if not supported(machine):
        raise ValueError("no supervised seccomp filter for machine %r" % machine)
    S = seccomp
    notify = (S.BPF_RET_K, 0, 0, SECCOMP_RET_USER_NOTIF)
    source: List[Union[str, tuple]] = [
        (S.BPF_LD_W_ABS, 0, 0, S.OFFSET_ARCH),
        (S.BPF_JEQ_K, "i386", 0, AUDIT_ARCH_I386),
        (S.BPF_JEQ_K, 0, "allow", S.AUDIT_ARCH_X86_64),
        (S.BPF_LD_W_ABS, 0, 0, S.OFFSET_NR),
        (S.BPF_ALU_AND_K, 0, 0, ~S.X32_SYSCALL_BIT & 0xFFFFFFFF),
        (S.BPF_JEQ_K, "notify", 0, CALLS["bind"][0]),
        (S.BPF_JEQ_K, "notify", 0, CALLS["connect"][0]),
        (S.BPF_JEQ_K, "shutdown", 0, CALLS["shutdown"][0]),
        (S.BPF_JEQ_K, "enosys", "allow", IO_URING_SETUP),
        "i386",
        (S.BPF_LD_W_ABS, 0, 0, S.OFFSET_NR),
        (S.BPF_JEQ_K, "notify", 0, CALLS["bind"][1]),
        (S.BPF_JEQ_K, "notify", 0, CALLS["connect"][1]),
        (S.BPF_JEQ_K, "shutdown", 0, CALLS["shutdown"][1]),
        (S.BPF_JEQ_K, "enosys", 0, I386_SOCKETCALL),
        (S.BPF_JEQ_K, "enosys", "allow", IO_URING_SETUP),
        "shutdown",  # only the halves that can turn a listener back into a bare socket
        (S.BPF_LD_W_ABS, 0, 0, S.OFFSET_ARGS + 8),
        (S.BPF_JEQ_K, "notify", 0, SHUT_RD),
        (S.BPF_JEQ_K, "notify", "allow", SHUT_RDWR),
        "allow", (S.BPF_RET_K, 0, 0, S.SECCOMP_RET_ALLOW),
        "notify", notify,
        "enosys", (S.BPF_RET_K, 0, 0, S.SECCOMP_RET_ERRNO | ENOSYS),
    ]
    return S._assemble(source)


def install(program: bytes, machine: str) -> int:
    """Install ``program`` on the calling thread with a listener; return the listener fd
    (close-on-exec). Needs CAP_SYS_ADMIN in the caller's user namespace or no_new_privs
    (EACCES otherwise); ENOSYS/EINVAL on kernels without user notification."""
    size = ctypes.sizeof(seccomp.SockFilter)
    count = len(program) // size
    insns = (seccomp.SockFilter * count).from_buffer_copy(program)
    prog = seccomp.SockFprog(count, ctypes.cast(insns, ctypes.POINTER(seccomp.SockFilter)))
    fn = libc().syscall
    fn.restype = ctypes.c_long
    fd = check(fn(ctypes.c_long(SYS_SECCOMP[machine]), ctypes.c_ulong(SECCOMP_SET_MODE_FILTER),
                  ctypes.c_ulong(SECCOMP_FILTER_FLAG_NEW_LISTENER), ctypes.c_void_p(ctypes.addressof(prog))),
               "seccomp")
    os.set_inheritable(fd, False)
    return fd


def recv(listener: int):
    """The next notification: (id, pid, nr, arch, args). The pid (a thread's id) is in the
    listener holder's pid namespace. OSError ENOENT: the caller was interrupted meanwhile."""
    import fcntl
    buf = bytearray(NOTIF.size)
    fcntl.ioctl(listener, NOTIF_RECV, buf, True)
    notif_id, pid, _, nr, arch, _, *args = NOTIF.unpack(buf)
    return notif_id, pid, nr, arch, args


def respond(listener: int, notif_id: int, value: int = 0, error: int = 0, carry_on: bool = False) -> bool:
    """Answer ``notif_id``: the call returns ``value``, or fails with ``error`` (a positive
    errno), or runs as made (``carry_on``). False if the caller is no longer waiting."""
    import fcntl
    resp = bytearray(RESP.pack(notif_id, value, -error if error else 0,
                               SECCOMP_USER_NOTIF_FLAG_CONTINUE if carry_on else 0))
    try:
        fcntl.ioctl(listener, NOTIF_SEND, resp, True)
    except OSError as e:
        if e.errno == 2:  # ENOENT: interrupted by a signal, or gone
            return False
        raise
    return True


def still_waiting(listener: int, notif_id: int) -> bool:
    """Whether the caller of ``notif_id`` still waits: checked after reading its memory or
    opening its pid, so neither can have been another process's."""
    import fcntl
    try:
        fcntl.ioctl(listener, NOTIF_ID_VALID, bytearray(struct.pack("=Q", notif_id)), True)
    except OSError:
        return False
    return True


def add_fd(listener: int, notif_id: int, fd: int, target_fd: int, cloexec: bool) -> int:
    """Put (a new reference to) our ``fd`` at ``target_fd`` in the caller's table, closing
    what was there, as dup2 would; returns the number."""
    import fcntl
    buf = bytearray(ADDFD.pack(notif_id, SECCOMP_ADDFD_FLAG_SETFD, fd, target_fd,
                               os.O_CLOEXEC if cloexec else 0))
    return fcntl.ioctl(listener, NOTIF_ADDFD, buf, True)


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def read_memory(pid: int, address: int, size: int) -> bytes:
    """``size`` bytes of process ``pid``'s memory at ``address`` (process_vm_readv)."""
    out = ctypes.create_string_buffer(size)
    local = _IoVec(ctypes.addressof(out), size)
    remote = _IoVec(address, size)
    fn = libc().process_vm_readv
    fn.restype = ctypes.c_ssize_t
    got = check(fn(ctypes.c_int(pid), ctypes.byref(local), ctypes.c_ulong(1), ctypes.byref(remote),
                   ctypes.c_ulong(1), ctypes.c_ulong(0)), "process_vm_readv")
    return out.raw[:got]


def pidfd_getfd(pidfd: int, fd: int) -> int:
    """A copy, in this process (close-on-exec), of process ``pidfd``'s ``fd`` (Linux 5.6)."""
    fn = libc().syscall
    fn.restype = ctypes.c_long
    return check(fn(ctypes.c_long(438), ctypes.c_int(pidfd), ctypes.c_int(fd), ctypes.c_uint(0)),
                 "pidfd_getfd")
