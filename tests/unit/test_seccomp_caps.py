"""rootless.linux.seccomp, rootless.linux.notify and rootless.linux.caps: the parts that
need no kernel.

The filter is checked two ways: by decoding its instructions, and by running it on
made-up struct seccomp_data with a small classic-BPF interpreter written here.
"""

import struct

import pytest

from rootless.errors import Unsupported
from rootless.linux import caps, notify, seccomp

ALLOW, FAKE = 0x7FFF0000, 0x00050000
ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
AUDIT_ARCH_I386, AUDIT_ARCH_ARM = 0x40000003, 0x40000028
X32 = 0x40000000

# From the kernel's arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h
FAKED = {
    "x86_64": {"chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260, "setuid": 105,
               "setgid": 106, "setreuid": 113, "setregid": 114, "setresuid": 117,
               "setresgid": 119, "setgroups": 116, "setfsuid": 122, "setfsgid": 123},
    "aarch64": {"fchown": 55, "fchownat": 54, "setuid": 146, "setgid": 144, "setreuid": 145,
                "setregid": 143, "setresuid": 147, "setresgid": 149, "setgroups": 159,
                "setfsuid": 151, "setfsgid": 152},
}
MKNOD = {"x86_64": {"mknod": (133, 1), "mknodat": (259, 2)}, "aarch64": {"mknodat": (33, 2)}}
# Calls that must reach the kernel: x86_64 read, getuid, chmod, openat; aarch64 read, getuid, openat
UNTOUCHED = {"x86_64": [0, 102, 90, 257], "aarch64": [63, 174, 56]}
S_IFCHR, S_IFBLK, S_IFIFO, S_IFREG, S_IFSOCK = 0o020000, 0o060000, 0o010000, 0o100000, 0o140000


def decode(program):
    assert len(program) % 8 == 0
    return [struct.unpack("<HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]


def run(program, arch, nr, args=(0, 0, 0, 0, 0, 0)):
    """Run a classic BPF seccomp program on one struct seccomp_data (little-endian)."""
    args = list(args) + [0] * (6 - len(args))
    data = struct.pack("<iIQ6Q", nr if nr < 2 ** 31 else nr - 2 ** 32, arch, 0,
                       *[a & (2 ** 64 - 1) for a in args])
    insns = decode(program)
    a = pc = 0
    for _ in range(len(insns) + 1):  # forward jumps only: no program runs longer
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == 0x20:
            assert k % 4 == 0 and k + 4 <= len(data)
            a = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:
            a &= k
        elif code == 0x15:
            pc += jt if a == k else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError("unexpected opcode %#x" % code)
    raise AssertionError("program ran off its end")


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_program_shape(machine):
    program = seccomp.fake_id_calls_program(machine)
    insns = decode(program)
    # load arch; compare with this machine's audit arch, else allow
    assert insns[0] == (0x20, 0, 0, 4)
    code, jt, jf, k = insns[1]
    assert (code, jt, k) == (0x15, 0, ARCH[machine])
    assert insns[1 + 1 + jf] == (0x06, 0, 0, ALLOW)
    assert insns[2] == (0x20, 0, 0, 0)
    compared = {k for code, _, _, k in insns if code == 0x15}
    for number in FAKED[machine].values():
        assert number in compared
    for number, _ in MKNOD[machine].values():
        assert number in compared
    # arch check and load, x32 mask, the compares, allow, 6 per mknod check, allow and fake
    expected = 3 + (machine == "x86_64") + len(FAKED[machine]) + len(MKNOD[machine]) \
        + 1 + 6 * len(MKNOD[machine]) + 2
    assert len(insns) == expected and len(program) == 8 * expected
    assert seccomp.fake_id_calls_program(machine) == program  # deterministic


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_faked_calls_return_zero_and_others_pass(machine):
    program = seccomp.fake_id_calls_program(machine)
    for name, number in FAKED[machine].items():
        assert run(program, ARCH[machine], number) == FAKE, name
    for number in UNTOUCHED[machine]:
        assert run(program, ARCH[machine], number) == ALLOW, number


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_other_arches_are_allowed(machine):
    program = seccomp.fake_id_calls_program(machine)
    other = {"x86_64": ARCH["aarch64"], "aarch64": ARCH["x86_64"]}[machine]
    for arch in (AUDIT_ARCH_I386, AUDIT_ARCH_ARM, other):
        for number in FAKED[machine].values():
            assert run(program, arch, number) == ALLOW


def test_x32_calls_are_faked_like_x86_64():
    program = seccomp.fake_id_calls_program("x86_64")
    for number in FAKED["x86_64"].values():
        assert run(program, ARCH["x86_64"], X32 | number) == FAKE
    assert run(program, ARCH["x86_64"], X32 | 0) == ALLOW          # read
    assert run(program, ARCH["x86_64"], X32 | 512) == ALLOW        # x32 rt_sigaction
    mode = [0, 0, 0]
    mode[2] = S_IFCHR | 0o600
    assert run(program, ARCH["x86_64"], X32 | 259, mode + [0x0103]) == FAKE
    mode[2] = S_IFIFO | 0o600
    assert run(program, ARCH["x86_64"], X32 | 259, mode) == ALLOW


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_mknod_faked_only_for_devices(machine):
    program = seccomp.fake_id_calls_program(machine)
    arch = ARCH[machine]
    for name, (number, mode_arg) in MKNOD[machine].items():
        def call(mode, dev):
            args = [0] * 6
            args[mode_arg], args[mode_arg + 1] = mode, dev
            return run(program, arch, number, args)
        assert call(S_IFCHR | 0o666, 0x0103) == FAKE, name      # /dev/null is 1:3
        assert call(S_IFBLK | 0o660, 0x0800) == FAKE, name      # /dev/sda is 8:0
        assert call(S_IFBLK | 0o660, 0) == FAKE, name
        assert call(S_IFCHR, 0) == ALLOW, name                  # an overlayfs whiteout
        assert call(S_IFCHR, 1 << 32) == ALLOW, name            # the kernel reads 32 bits of dev
        assert call(S_IFIFO | 0o644, 0) == ALLOW, name
        assert call(S_IFREG | 0o644, 0) == ALLOW, name
        assert call(0o644, 0) == ALLOW, name                    # type 0 means a regular file
        assert call(S_IFSOCK | 0o755, 0) == ALLOW, name
        assert call((1 << 32) | S_IFIFO, 5) == ALLOW, name      # high bits are not a type


def test_unknown_machine_is_unsupported():
    for machine in ("i686", "armv7l", "riscv64", "ppc64le", "s390x", "", "X86_64"):
        with pytest.raises(Unsupported):
            seccomp.fake_id_calls_program(machine)


def test_install_refuses_a_torn_program():
    with pytest.raises(ValueError):
        seccomp.install(b"")
    with pytest.raises(ValueError):
        seccomp.install(b"\0" * 12)


def test_cap_numbers_are_the_kernels():
    assert caps.CAPS["CAP_CHOWN"] == 0
    assert caps.CAPS["CAP_NET_BIND_SERVICE"] == 10
    assert caps.CAPS["CAP_SYS_ADMIN"] == 21
    assert caps.CAPS["CAP_MKNOD"] == 27
    assert caps.CAPS["CAP_SETFCAP"] == 31
    assert caps.CAPS["CAP_CHECKPOINT_RESTORE"] == 40
    assert sorted(caps.CAPS.values()) == list(range(41))
    assert all(name.startswith("CAP_") for name in caps.CAPS)


def test_masks_and_numbers():
    assert caps.mask([]) == 0
    assert caps.mask(["CAP_CHOWN"]) == 1
    assert caps.mask(["CAP_CHOWN", "CAP_CHOWN", "CAP_KILL"]) == 0b100001
    assert caps.mask(["CAP_CHECKPOINT_RESTORE"]) == 1 << 40
    assert caps.numbers(iter(["CAP_SYS_ADMIN", "CAP_CHOWN"])) == [0, 21]


@pytest.mark.parametrize("names", [["CAP_NOPE"], ["CAP_CHOWN", "chown"], ["SYS_ADMIN"],
                                   ["cap_chown"], [""]])
def test_unknown_cap_names_raise_value_error(names):
    with pytest.raises(ValueError):
        caps.mask(names)
    with pytest.raises(ValueError):
        caps.drop_bounding(names)   # refused before any prctl
    with pytest.raises(ValueError):
        caps.set_caps(names, [], [])
    with pytest.raises(ValueError):
        caps.apply(names)


# -- rootless.linux.notify: the supervised filter of network.bypass, and its structs' sizes

NOTIFY, ENOSYS = 0x7FC00000, 0x00050000 | 38
X86_64 = 0xC000003E
# From arch/x86/entry/syscalls/syscall_64.tbl and syscall_32.tbl
NATIVE = {"bind": 49, "connect": 42, "shutdown": 48, "io_uring_setup": 425}
I386 = {"bind": 361, "connect": 362, "shutdown": 373, "io_uring_setup": 425, "socketcall": 102}
PROGRAM = notify.supervised_program("x86_64")


@pytest.mark.parametrize("arch,table,bit", [(X86_64, NATIVE, 0), (X86_64, NATIVE, X32), (AUDIT_ARCH_I386, I386, 0)])
def test_marked_calls(arch, table, bit):
    assert run(PROGRAM, arch, table["bind"] | bit, (3, 0, 16)) == NOTIFY
    assert run(PROGRAM, arch, table["connect"] | bit, (3, 0, 16)) == NOTIFY
    assert run(PROGRAM, arch, table["io_uring_setup"] | bit) == ENOSYS


@pytest.mark.parametrize("arch,table", [(X86_64, NATIVE), (AUDIT_ARCH_I386, I386)])
def test_shutdown_is_marked_only_for_the_halves_that_disconnect(arch, table):
    assert run(PROGRAM, arch, table["shutdown"], (3, 0)) == NOTIFY  # SHUT_RD
    assert run(PROGRAM, arch, table["shutdown"], (3, 2)) == NOTIFY  # SHUT_RDWR
    assert run(PROGRAM, arch, table["shutdown"], (3, 1)) == ALLOW  # SHUT_WR: a half-close


def test_everything_else_reaches_the_kernel():
    for nr in (0, 1, 41, 43, 44, 257, 288):  # read, write, socket, accept, sendto, openat, accept4
        assert run(PROGRAM, X86_64, nr) == ALLOW
    assert run(PROGRAM, AUDIT_ARCH_I386, I386["socketcall"]) == ENOSYS  # its arguments are out of sight
    assert run(PROGRAM, AUDIT_ARCH_I386, 3) == ALLOW  # i386 read


def test_call_names_and_struct_sizes():
    from rootless.network.bypass import _call_name
    assert [_call_name(nr, X86_64) for nr in (49, 42, 48, 42 | X32)] == ["bind", "connect", "shutdown", "connect"]
    assert _call_name(362, AUDIT_ARCH_I386) == "connect" and _call_name(1, X86_64) == ""
    assert (notify.NOTIF.size, notify.RESP.size, notify.ADDFD.size) == (80, 24, 24)


def test_other_machines_are_refused():
    assert not notify.supported("aarch64")
    with pytest.raises(ValueError):
        notify.supervised_program("aarch64")
