"""A seccomp filter that makes the id-changing calls of single-uid mode succeed as no-ops.

In single-uid mode the user namespace maps only container uid 0 (and gid 0) to the real
user, so the kernel must refuse chown to any other id, setuid/setgid to any other id,
setgroups (denied before gid_map could be written) and mknod of a device. Package
managers (dpkg, apt, rpm, apk) make exactly those calls as a matter of routine and abort
when they fail, although the result would not matter in a throwaway container. Like
Charliecloud's ``--seccomp``, this filter makes those calls return 0 without doing
anything, so the package manager carries on; every other call goes to the kernel.

mknod and mknodat are faked only when they create a character or block device: fifos,
sockets and regular files are created for real, and so are overlayfs whiteouts
(character device 0:0), which the kernel allows in a user namespace.

The program is pure data (:func:`fake_id_calls_program`), so it is tested without the
kernel; :func:`install` is the only part that needs it.
"""

from __future__ import annotations

import ctypes

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict, List, Tuple, Union
    _Insn = Tuple[int, Union[int, str], Union[int, str], int]

from rootless.errors import Unsupported
from rootless.linux.libc import call

# linux/filter.h: classic BPF opcodes (the parts seccomp accepts that this filter uses)
BPF_LD_W_ABS = 0x20     # BPF_LD | BPF_W | BPF_ABS: A = the 32-bit word at offset k
BPF_ALU_AND_K = 0x54    # BPF_ALU | BPF_AND | BPF_K: A &= k
BPF_JEQ_K = 0x15        # BPF_JMP | BPF_JEQ | BPF_K: A == k ? jt : jf
BPF_RET_K = 0x06        # BPF_RET | BPF_K: return k

# linux/seccomp.h
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000  # | errno; errno 0 makes the call "succeed" with 0
PR_SET_SECCOMP = 22

# struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
OFFSET_NR = 0
OFFSET_ARCH = 4
OFFSET_ARGS = 16

# linux/audit.h
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7

X32_SYSCALL_BIT = 0x40000000

S_IFMT = 0o170000
S_IFCHR = 0o020000
S_IFBLK = 0o060000

_FAKED_CALLS = ("chown", "fchown", "lchown", "fchownat", "setuid", "setgid", "setreuid",
                "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid")

# Syscall numbers, from the kernel's syscall_64.tbl and asm-generic/unistd.h. aarch64 has
# no chown, lchown or mknod (only the *at forms), and neither arch has 32-bit-uid variants.
# "mknod" maps to (number, index of the mode argument).
_ARCHES = {
    "x86_64": {
        "arch": AUDIT_ARCH_X86_64,
        "x32": True,
        "calls": {"chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260, "setuid": 105,
                  "setgid": 106, "setreuid": 113, "setregid": 114, "setresuid": 117,
                  "setresgid": 119, "setgroups": 116, "setfsuid": 122, "setfsgid": 123},
        "mknod": {"mknod": (133, 1), "mknodat": (259, 2)},
    },
    "aarch64": {
        "arch": AUDIT_ARCH_AARCH64,
        "x32": False,
        "calls": {"fchown": 55, "fchownat": 54, "setuid": 146, "setgid": 144,
                  "setreuid": 145, "setregid": 143, "setresuid": 147, "setresgid": 149,
                  "setgroups": 159, "setfsuid": 151, "setfsgid": 152},
        "mknod": {"mknodat": (33, 2)},
    },
}


class SockFilter(ctypes.Structure):
    """struct sock_filter: one classic BPF instruction (8 bytes)."""

    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    """struct sock_fprog: the instruction count and a pointer to the instructions."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def machines() -> List[str]:
    """The ``os.uname().machine`` values this module has syscall tables for."""
    return sorted(_ARCHES)


# An instruction before assembly: (code, jt, jf, k), where jt and jf are label names
# (strings) or 0 for "next instruction". A bare string in the list is a label.


def _assemble(source: List[Union[str, _Insn]]) -> bytes:
    labels: Dict[str, int] = {}
    insns: List[_Insn] = []
    for item in source:
        if isinstance(item, str):
            labels[item] = len(insns)
        else:
            insns.append(item)

    def offset(target: Union[int, str], index: int) -> int:
        if not isinstance(target, str):
            return target
        jump = labels[target] - index - 1
        if not 0 <= jump <= 255:  # classic BPF jumps only forward, by at most 255
            raise ValueError("seccomp program: jump to %s out of range" % target)
        return jump

    out = b""
    for index, (code, jt, jf, k) in enumerate(insns):
        out += bytes(SockFilter(code, offset(jt, index), offset(jf, index), k))
    return out


def fake_id_calls_program(machine: str) -> bytes:
    """The filter for ``machine`` (``os.uname().machine``) as packed struct sock_filter.

    Calls made under another audit arch (i386 or arm compat) are allowed untouched. On
    x86_64 the x32 bit is masked off the call number first, so x32 callers are faked the
    same way (the faked calls have the same numbers in both ABIs). Pure.
    """
    table = _ARCHES.get(machine)
    if table is None:
        raise Unsupported("no seccomp syscall table for machine %r (known: %s)"
                          % (machine, ", ".join(machines())))
    source: List[Union[str, _Insn]] = [
        (BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        (BPF_JEQ_K, 0, "allow", table["arch"]),
        (BPF_LD_W_ABS, 0, 0, OFFSET_NR),
    ]
    if table["x32"]:
        source.append((BPF_ALU_AND_K, 0, 0, ~X32_SYSCALL_BIT & 0xFFFFFFFF))
    for name in _FAKED_CALLS:
        if name in table["calls"]:
            source.append((BPF_JEQ_K, "fake", 0, table["calls"][name]))
    for name, (number, _) in sorted(table["mknod"].items()):
        source.append((BPF_JEQ_K, name, 0, number))
    source.append((BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    for name, (_, mode_arg) in sorted(table["mknod"].items()):
        # Both arches are little-endian: the low 32 bits of an argument come first.
        source += [
            name,
            (BPF_LD_W_ABS, 0, 0, OFFSET_ARGS + 8 * mode_arg),
            (BPF_ALU_AND_K, 0, 0, S_IFMT),
            (BPF_JEQ_K, "fake", 0, S_IFBLK),
            (BPF_JEQ_K, 0, "allow", S_IFCHR),
            (BPF_LD_W_ABS, 0, 0, OFFSET_ARGS + 8 * (mode_arg + 1)),  # dev
            (BPF_JEQ_K, "allow", "fake", 0),  # 0:0 is a whiteout, which the kernel allows
        ]
    # classic BPF jumps only forward: the shared returns come last
    source += ["allow", (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
               "fake", (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | 0)]
    return _assemble(source)


def install(program: bytes) -> None:
    """Install ``program`` (packed struct sock_filter) on the calling thread.

    The kernel accepts a filter only from a thread with no_new_privs set
    (``caps.set_no_new_privs()``) or with CAP_SYS_ADMIN in its user namespace; otherwise
    it fails with EACCES. The filter applies to the calling thread, is inherited by its
    children and survives execve; it can never be removed. Install it in the process that
    will exec the container's command, while that process has one thread.
    """
    if not program or len(program) % ctypes.sizeof(SockFilter):
        raise ValueError("a seccomp program is a non-empty sequence of 8-byte instructions")
    count = len(program) // ctypes.sizeof(SockFilter)
    insns = (SockFilter * count).from_buffer_copy(program)
    prog = SockFprog(count, ctypes.cast(insns, ctypes.POINTER(SockFilter)))
    call("prctl", ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
         ctypes.c_ulong(ctypes.addressof(prog)), ctypes.c_ulong(0), ctypes.c_ulong(0))
