"""The seccomp filter and the capability calls against the real kernel, as an ordinary user.

Every test works in a forked child (rootless.linux.child.run_in_child): a filter, a user
namespace or a dropped capability can never be undone, and must not reach pytest.
"""

import ctypes
import errno
import json
import os
import stat
import subprocess

import pytest

from conftest import need
from rootless.linux import caps, seccomp
from rootless.linux.child import run_in_child
from rootless.linux.idmap import enter_single_uid_namespace

MACHINE = os.uname().machine


def in_child(fn):
    """Run ``fn`` in a forked child and return what it returned (JSON-able)."""
    ok, answer = run_in_child(lambda: json.dumps(fn()))
    assert ok, answer
    return json.loads(answer)


def status(*fields):
    with open("/proc/self/status") as f:
        lines = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return {name: lines[name].strip() for name in fields}


def attempt(fn, *args):
    """"ok" or the errno name fn raised."""
    try:
        fn(*args)
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def filtered():
    """In the child: enter a single-uid namespace, set no_new_privs, install the filter."""
    enter_single_uid_namespace()
    caps.set_no_new_privs()
    seccomp.install(seccomp.fake_id_calls_program(MACHINE))


@pytest.fixture
def userns(unprivileged):
    ok, why = run_in_child(lambda: (enter_single_uid_namespace(), "")[1])
    need(ok, "unprivileged user namespaces are not available: " + why)
    need(MACHINE in seccomp.machines(), "no seccomp syscall table for " + MACHINE)


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    return str(path)


def test_without_the_filter_chown_to_an_unmapped_id_fails(userns, target):
    def child():
        enter_single_uid_namespace()
        return {"chown": attempt(os.chown, target, 42, 42),
                "setgroups": attempt(os.setgroups, [7]),
                "setresuid": attempt(os.setresuid, 1000, 1000, 1000)}
    got = in_child(child)
    # 42 has no mapping: the kernel cannot even name the owner
    assert got["chown"] == "EINVAL"
    assert got["setgroups"] == "EPERM"      # setgroups is denied before gid_map is written
    assert got["setresuid"] == "EINVAL"


def test_filter_fakes_the_id_calls(userns, target):
    def child():
        filtered()
        result = {"chown": attempt(os.chown, target, 42, 42),
                  "lchown": attempt(os.lchown, target, 43, 43),
                  "setgroups": attempt(os.setgroups, [7]),
                  "setresuid": attempt(os.setresuid, 1000, 1000, 1000),
                  "setresgid": attempt(os.setresgid, 1000, 1000, 1000),
                  "setuid": attempt(os.setuid, 5),
                  "setgid": attempt(os.setgid, 5),
                  "setreuid": attempt(os.setreuid, 6, 6),
                  "setregid": attempt(os.setregid, 6, 6)}
        with open(target) as f:
            result["fchown"] = attempt(os.fchown, f.fileno(), 44, 44)
        st = os.stat(target)
        result.update(owner=[st.st_uid, st.st_gid], uids=list(os.getresuid()),
                      gids=list(os.getresgid()), groups=os.getgroups())
        result.update(status("Seccomp", "NoNewPrivs"))
        return result
    got = in_child(child)
    calls = ("chown", "lchown", "fchown", "setgroups", "setresuid", "setresgid", "setuid",
             "setgid", "setreuid", "setregid")
    assert {name: got[name] for name in calls} == {name: "ok" for name in calls}
    # ... and nothing changed
    assert got["owner"] == [0, 0]
    assert got["uids"] == [0, 0, 0] and got["gids"] == [0, 0, 0]
    assert 7 not in got["groups"]
    assert got["Seccomp"] == "2" and got["NoNewPrivs"] == "1"
    st = os.stat(target)
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


def test_chown_is_faked_even_to_the_mapped_id(userns, target):
    """A real chown clears the setuid bit; under the filter it survives, so none ran."""
    def child(with_filter):
        def fn():
            if with_filter:
                filtered()
            else:
                enter_single_uid_namespace()
            os.chmod(target, 0o4755)
            os.chown(target, 0, 0)
            return stat.S_IMODE(os.stat(target).st_mode)
        return fn
    assert in_child(child(False)) == 0o755
    assert in_child(child(True)) == 0o4755


def test_mknod_devices_are_faked_other_nodes_are_real(userns, tmp_path):
    d = str(tmp_path)

    def nodes(prefix):
        result = {
            "fifo": attempt(os.mkfifo, os.path.join(d, prefix + "fifo")),
            "regular": attempt(os.mknod, os.path.join(d, prefix + "regular"), stat.S_IFREG | 0o600),
            "chardev": attempt(os.mknod, os.path.join(d, prefix + "null"), stat.S_IFCHR | 0o600,
                               os.makedev(1, 3)),
            "blockdev": attempt(os.mknod, os.path.join(d, prefix + "sda"), stat.S_IFBLK | 0o600,
                                os.makedev(8, 0)),
            "whiteout": attempt(os.mknod, os.path.join(d, prefix + "whiteout"),
                                stat.S_IFCHR | 0o600, os.makedev(0, 0)),
        }
        return result

    def child_without():
        enter_single_uid_namespace()
        return nodes("plain-")

    def child_with():
        filtered()
        return nodes("seccomp-")

    without = in_child(child_without)
    with_filter = in_child(child_with)
    assert without["chardev"] == without["blockdev"] == "EPERM"
    assert with_filter == dict(without, chardev="ok", blockdev="ok")
    assert with_filter["fifo"] == with_filter["regular"] == "ok"

    def kind(name):
        try:
            st = os.lstat(os.path.join(d, name))
        except FileNotFoundError:
            return None
        if stat.S_ISCHR(st.st_mode):
            return "chr %d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
        return stat.S_IFMT(st.st_mode)
    assert kind("seccomp-fifo") == stat.S_IFIFO
    assert kind("seccomp-regular") == stat.S_IFREG
    # the faked device calls "succeed" and create nothing
    assert kind("seccomp-null") is None and kind("seccomp-sda") is None
    # a whiteout (0:0) goes to the kernel, which allows it in a user namespace
    assert kind("seccomp-whiteout") == kind("plain-whiteout")
    if with_filter["whiteout"] == "ok":
        assert kind("seccomp-whiteout") == "chr 0:0"


def test_filter_survives_exec(userns, target):
    def child(with_filter):
        def fn():
            if with_filter:
                filtered()
            else:
                enter_single_uid_namespace()
            proc = subprocess.run(
                ["/bin/sh", "-c", 'chown 42:42 "$1" && grep "^Seccomp:" /proc/self/status',
                 "sh", target], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            return [proc.returncode, proc.stdout.decode()]
        return fn
    code, out = in_child(child(False))
    assert code != 0, out
    code, out = in_child(child(True))
    assert code == 0, out
    assert out.split() == ["Seccomp:", "2"]
    st = os.stat(target)
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


# Raw numbers, so the old calls glibc no longer uses (chown, lchown, mknod) are covered too
RAW = {
    "x86_64": {"chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260, "setuid": 105,
               "setgid": 106, "setreuid": 113, "setregid": 114, "setresuid": 117,
               "setresgid": 119, "setgroups": 116, "setfsuid": 122, "setfsgid": 123},
    "aarch64": {"fchown": 55, "fchownat": 54, "setuid": 146, "setgid": 144, "setreuid": 145,
                "setregid": 143, "setresuid": 147, "setresgid": 149, "setgroups": 159,
                "setfsuid": 151, "setfsgid": 152},
}
RAW_MKNOD = {"x86_64": {"mknod": (133, 1), "mknodat": (259, 2)}, "aarch64": {"mknodat": (33, 2)}}


def raw_syscall(number, *args):
    """The syscall's return value, or -errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
    return -ctypes.get_errno() if result == -1 else result


def test_raw_syscalls_are_faked(userns, tmp_path):
    """Arguments the kernel would refuse (NULL paths, unmapped ids) prove nothing ran."""
    path = str(tmp_path / "dev")

    def child():
        filtered()
        results = {name: raw_syscall(number, 0, 42, 42, 42)
                   for name, number in RAW[MACHINE].items()}
        buf = ctypes.create_string_buffer(path.encode())
        for name, (number, mode_arg) in RAW_MKNOD[MACHINE].items():
            args = [-100, 0, 0, 0]  # AT_FDCWD for mknodat
            args[mode_arg - 1] = ctypes.addressof(buf)
            args[mode_arg] = stat.S_IFCHR | 0o600
            args[mode_arg + 1] = os.makedev(1, 3)
            results[name] = [raw_syscall(number, *args[:mode_arg + 2]), os.path.lexists(path)]
            args[mode_arg] = stat.S_IFIFO | 0o600
            results[name + "-fifo"] = [raw_syscall(number, *args[:mode_arg + 2]),
                                       stat.S_ISFIFO(os.lstat(path).st_mode)]
            os.unlink(path)
        if MACHINE == "x86_64":  # the x32 bit is masked before the compare
            results["x32-chown"] = raw_syscall(0x40000000 | 92, 0, 42, 42)
        return results
    got = in_child(child)
    expected = {name: 0 for name in RAW[MACHINE]}
    expected.update((name, [0, False]) for name in RAW_MKNOD[MACHINE])  # no device made
    expected.update((name + "-fifo", [0, True]) for name in RAW_MKNOD[MACHINE])  # real fifos
    if MACHINE == "x86_64":
        expected["x32-chown"] = 0
    assert got == expected


def test_install_needs_no_new_privs_or_cap_sys_admin(userns):
    program = seccomp.fake_id_calls_program(MACHINE)

    def outside():  # an ordinary user without no_new_privs
        return attempt(seccomp.install, program)

    def inside():   # root of a user namespace holds CAP_SYS_ADMIN there
        enter_single_uid_namespace()
        return [attempt(seccomp.install, program), status("Seccomp", "NoNewPrivs")]
    assert in_child(outside) == "EACCES"
    result, fields = in_child(inside)
    assert result == "ok"
    assert fields == {"Seccomp": "2", "NoNewPrivs": "0"}


def test_apply_keeps_only_the_listed_caps(userns):
    def child():
        enter_single_uid_namespace()
        before = status("CapBnd", "CapEff")
        caps.apply(["CAP_CHOWN"])
        return [before, status("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")]
    before, after = in_child(child)
    full = (1 << (caps.last_cap() + 1)) - 1
    assert int(before["CapBnd"], 16) == int(before["CapEff"], 16) == full
    assert {name: int(value, 16) for name, value in after.items()} == {
        "CapInh": 1, "CapPrm": 1, "CapEff": 1, "CapBnd": 1, "CapAmb": 0}


def test_apply_nothing_then_exec_has_no_caps(userns):
    def child():
        enter_single_uid_namespace()
        caps.apply([])
        out = subprocess.run(["/bin/sh", "-c", "grep ^Cap /proc/self/status"],
                             stdout=subprocess.PIPE, check=True).stdout.decode()
        return dict(line.split(":\t") for line in out.splitlines())
    got = in_child(child)
    assert {name: int(value, 16) for name, value in got.items()} == {
        "CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}


def test_apply_then_exec_as_root_keeps_the_caps(userns):
    def child():
        enter_single_uid_namespace()
        caps.apply(["CAP_CHOWN", "CAP_NET_BIND_SERVICE"])
        out = subprocess.run(["/bin/sh", "-c", "grep ^Cap /proc/self/status"],
                             stdout=subprocess.PIPE, check=True).stdout.decode()
        return dict(line.split(":\t") for line in out.splitlines())
    got = in_child(child)
    kept = (1 << 0) | (1 << 10)
    assert {name: int(value, 16) for name, value in got.items()} == {
        "CapInh": kept, "CapPrm": kept, "CapEff": kept, "CapBnd": kept, "CapAmb": 0}


def test_ambient_raise_and_clear(userns):
    def child():
        enter_single_uid_namespace()
        caps.set_caps(["CAP_CHOWN", "CAP_KILL"], ["CAP_CHOWN", "CAP_KILL"], ["CAP_CHOWN"])
        refused = attempt(caps.raise_ambient, ["CAP_KILL"])  # not inheritable
        caps.raise_ambient(["CAP_CHOWN"])
        raised = status("CapAmb")["CapAmb"]
        caps.clear_ambient()
        return [refused, raised, status("CapAmb")["CapAmb"]]
    refused, raised, cleared = in_child(child)
    assert refused == "EPERM"
    assert int(raised, 16) == 1 and int(cleared, 16) == 0


def test_set_caps_cannot_add_to_permitted(userns):
    def child():
        enter_single_uid_namespace()
        caps.set_caps([], ["CAP_CHOWN"], [])
        return attempt(caps.set_caps, [], ["CAP_CHOWN", "CAP_KILL"], [])
    assert in_child(child) == "EPERM"


def test_no_new_privs(unprivileged):
    def child():
        caps.set_no_new_privs()
        return status("NoNewPrivs")["NoNewPrivs"]
    assert in_child(child) == "1"


def test_keepcaps_and_pdeathsig(unprivileged):
    PR_GET_PDEATHSIG, PR_GET_KEEPCAPS = 2, 7

    def child():
        libc = ctypes.CDLL(None, use_errno=True)
        sig = ctypes.c_int(-1)
        caps.set_pdeathsig(15)
        libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(sig), ctypes.c_ulong(0), ctypes.c_ulong(0),
                   ctypes.c_ulong(0))
        caps.set_keepcaps(True)
        on = libc.prctl(PR_GET_KEEPCAPS, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0),
                        ctypes.c_ulong(0))
        caps.set_keepcaps(False)
        off = libc.prctl(PR_GET_KEEPCAPS, ctypes.c_ulong(0), ctypes.c_ulong(0),
                         ctypes.c_ulong(0), ctypes.c_ulong(0))
        return [sig.value, on, off]
    assert in_child(child) == [15, 1, 0]


def test_last_cap_is_the_kernels(unprivileged):
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert caps.last_cap() == int(f.read())
    assert caps.last_cap() >= 36
