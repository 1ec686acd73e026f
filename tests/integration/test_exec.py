"""``exec`` into running containers, and the seed's ``nsenter -t PID`` step, as the
unprivileged test users, on every rootfs driver (the id-mapping mode is the user's:
sub-ids for rltest, a single uid for rltest2).

A container is started with ``run -d``, so the CLI that started it has gone before the
first ``exec``. What an exec'd process is, is asked of the kernel from inside it
(/proc/self) and compared with the container's first process (/proc/1 inside, its
host pid outside).
"""

import json
import os
import pty
import re
import select
import shutil
import subprocess
import time

import pytest

from conftest import _has_subuid as sub_ids, need
from test_detached import detached_root, end_what_is_left
from test_run import settled
from test_run import driver  # noqa: F401  (a pytest fixture)


@pytest.fixture(scope="module")
def erl(tmp_path_factory, test_images):
    yield from detached_root(tmp_path_factory, test_images, "exec")


@pytest.fixture(autouse=True)
def nothing_outlives_its_test(erl):
    yield
    end_what_is_left(erl)


@pytest.fixture
def box(erl, driver):
    """A detached busybox that sleeps, on ``driver``: (id, host pid of its first process)."""
    cid = erl.out("run", "-d", "--storage-driver", driver, "--hostname", "boxhost",
                  "busybox", "sleep", "1000").strip()
    return cid, host_pid(erl, cid)


def host_pid(erl, cid) -> int:
    return int(erl.out("inspect", "-f", "{{.State.Pid}}", cid).strip())


def status_fields(text: str) -> dict:
    keep = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Uid", "Gid")
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if k in keep}


# -- output, exit codes, identity ------------------------------------------------------

def test_output_and_exit_codes(erl, box):
    cid, _ = box
    assert erl.out("exec", cid, "echo", "hello from exec") == "hello from exec\n"
    assert erl("exec", cid, "sh", "-c", "exit 7", check=False).returncode == 7
    missing = erl("exec", cid, "no-such-command", check=False)
    assert missing.returncode == 127
    assert b'"no-such-command": executable file not found in $PATH' in missing.stderr
    not_executable = erl("exec", cid, "/etc/passwd", check=False)
    assert not_executable.returncode == 126
    assert b"permission denied" in not_executable.stderr
    killed = erl("exec", cid, "sh", "-c", "kill -9 $$", check=False)
    assert killed.returncode == 137


def test_the_same_process_as_the_first(erl, box):
    """Namespaces, capabilities, no_new_privs and seccomp of an exec'd process are the
    first process's: one code path (init.become_process) for both."""
    cid, pid = box
    inside = erl.out("exec", cid, "sh", "-c",
                     "for n in user mnt pid uts ipc cgroup net; do readlink /proc/self/ns/$n; done")
    outside = [os.readlink("/proc/%d/ns/%s" % (pid, n)) for n in ("user", "mnt", "pid", "uts", "ipc", "cgroup", "net")]
    assert inside.split() == outside
    mine, first = erl.out("exec", cid, "sh", "-c", "cat /proc/self/status; echo ==; cat /proc/1/status").split("==")
    assert status_fields(mine) == status_fields(first)
    assert status_fields(mine)["NoNewPrivs"] == "1"
    # In the container's pid namespace, its pid 1 the container's command.
    assert erl.out("exec", cid, "cat", "/proc/1/cmdline").split("\0")[:2] == ["sleep", "1000"]
    assert int(erl.out("exec", cid, "sh", "-c", "echo $$").strip()) > 1
    assert erl.out("exec", cid, "hostname").strip() == "boxhost"
    assert erl.out("exec", cid, "pwd").strip() == "/"
    env = erl.out("exec", cid, "env").split()
    assert "HOSTNAME=boxhost" in env and "HOME=/root" in env and any(e.startswith("PATH=") for e in env)


def test_privileged_gives_every_capability(erl, box):
    cid, _ = box
    plain = status_fields(erl.out("exec", cid, "cat", "/proc/self/status"))
    full = status_fields(erl.out("exec", "--privileged", cid, "cat", "/proc/self/status"))
    assert int(full["CapEff"], 16) > int(plain["CapEff"], 16)
    assert int(full["CapEff"], 16) & (1 << 21)  # CAP_SYS_ADMIN, not in Docker's default set


def test_user_workdir_env(erl, box, tmp_path):
    cid, _ = box
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nFROM_FILE=file\nBOTH=file\n")
    out = erl.out("exec", "-w", "/tmp", "-e", "A=1", "-e", "BOTH=flag", "--env-file", str(env_file),
                  cid, "sh", "-c", "pwd; echo $A $FROM_FILE $BOTH")
    assert out.split("\n")[:2] == ["/tmp", "1 file flag"]
    os.environ["ROOTLESS_EXEC_PASSED"] = "from-host"
    try:
        assert erl.out("exec", "-e", "ROOTLESS_EXEC_PASSED", cid, "sh", "-c",
                       "echo $ROOTLESS_EXEC_PASSED").strip() == "from-host"
    finally:
        del os.environ["ROOTLESS_EXEC_PASSED"]
    assert erl.out("exec", "-u", "root", cid, "id", "-u").strip() == "0"
    bad_dir = erl("exec", "-w", "relative", cid, "true", check=False)
    assert bad_dir.returncode == 125 and b"absolute path" in bad_dir.stderr
    unknown = erl("exec", "-u", "nosuchuser", cid, "true", check=False)
    assert unknown.returncode == 125 and b"unable to find user nosuchuser" in unknown.stderr
    if sub_ids():
        assert erl.out("exec", "-u", "1000:1000", cid, "sh", "-c", "id -u; id -g; echo $HOME").split() == ["1000", "1000", "/"]
        # A file it makes belongs to that user inside.
        erl("exec", "-u", "1000", cid, "touch", "/tmp/made-by-1000")
        assert erl.out("exec", cid, "stat", "-c", "%u", "/tmp/made-by-1000").strip() == "1000"
    else:
        one = erl("exec", "-u", "1000", cid, "true", check=False)
        assert one.returncode == 125
        assert b"uid 1000 does not exist in this container" in one.stderr and b"single-uid" in one.stderr


def test_stdin_only_with_i(erl, box):
    cid, _ = box
    assert erl("exec", "-i", cid, "cat", input=b"piped in\n").stdout == b"piped in\n"
    # Without -i the command's stdin is empty, as Docker's.
    assert erl("exec", cid, "cat", input=b"not passed\n", timeout=20).stdout == b""


def test_detached_exec(erl, box):
    cid, _ = box
    started = time.monotonic()
    erl("exec", "-d", cid, "sh", "-c", "sleep 1; echo done > /tmp/marker")
    assert time.monotonic() - started < 1, "exec -d waited for its command"
    assert settled(lambda: erl("exec", cid, "cat", "/tmp/marker", check=False).stdout, timeout=10,
                   until=lambda v: v == b"done\n") == b"done\n"


def test_tty(erl, box):
    """``exec -it`` through a real terminal: the container's own pty, the window size of
    the terminal, the command's exit code."""
    cid, _ = box
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(erl.env())
        os.execvp(erl.base[0], erl.base + ["exec", "-it", cid, "sh"])
    import fcntl
    import struct
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    seen = b""
    deadline = time.monotonic() + 30
    typed = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if not typed and b"# " in seen:
            os.write(fd, b"tty; stty size; echo T=$TERM; exit 3\r")
            typed = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = seen.decode(errors="replace")
    assert re.search(r"/dev/pts/\d+\r\n33 111\r\nT=xterm", text), text
    assert os.WEXITSTATUS(status) == 3


def test_exec_needs_a_running_container(erl):
    cid = erl.out("create", "busybox", "true").strip()
    refused = erl("exec", cid, "true", check=False)
    assert refused.returncode == 1  # Docker's CLI, for its daemon's refusal
    assert refused.stderr.decode().strip().endswith("container %s is not running" % cid)
    erl("start", cid)
    erl("wait", cid)
    assert b"is not running" in erl("exec", cid, "true", check=False).stderr
    missing = erl("exec", "no-such-container", "true", check=False)
    assert missing.returncode == 125 and b"no-such-container" in missing.stderr
    usage = erl("exec", cid, check=False)
    assert usage.returncode == 125


def test_exec_ends_with_the_container(erl, box):
    """What exec started lives in the container's pid namespace: it ends with it."""
    cid, _ = box
    erl("exec", "-d", cid, "sleep", "999")
    found = settled(lambda: [p for p in ours_in(cid, erl) if "999" in p], timeout=5, until=bool)
    assert found
    erl("rm", "-f", cid)
    assert settled(lambda: [p for p in ours_in(cid, erl) if "999" in p]) == []


def ours_in(cid, erl):
    """Command lines of this user's processes named "sleep 999"."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    line = f.read().replace(b"\0", b" ").decode(errors="replace")
                with open("/proc/%s/stat" % name) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
            except OSError:
                continue
            if line.strip() == "sleep 999":
                found.append(line)
    return found


# -- nsenter, the seed's step ------------------------------------------------------------

def test_nsenter_by_state_pid(erl, driver):
    """``inspect -f '{{.State.Pid}}'`` then util-linux nsenter with every namespace lands
    in the container's root and prints its hostname. -n needs a network namespace of the
    container's own (``--network none`` here; the host's network namespace belongs to the
    host's user namespace, which a process in the container's cannot join)."""
    need(shutil.which("nsenter") is not None, "util-linux nsenter")
    cid = erl.out("run", "-d", "--storage-driver", driver, "--network", "none", "--hostname", "seedhost",
                  "busybox", "sleep", "1000").strip()
    pid = host_pid(erl, cid)
    assert erl.out("inspect", "-f", "{{.HostConfig.NetworkMode}}", cid).strip() == "none"
    enter = ["nsenter", "-t", str(pid), "-U", "-m", "-u", "-i", "-n", "-p", "--preserve-credentials"]
    done = subprocess.run(enter + ["cat", "/etc/hostname"], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"seedhost\n"
    inside = subprocess.run(enter + ["sh", "-c", "ls /; cat /proc/1/cmdline"], capture_output=True, timeout=30)
    assert b"linuxrc" in inside.stdout.split(b"\n")  # busybox's root, not the host's
    assert inside.stdout.endswith(b"sleep\x001000\x00")
    # Its own network: only loopback, and up.
    net = erl.out("exec", cid, "cat", "/proc/net/dev")
    assert re.findall(r"^\s*(\w+):", net, re.M) == ["lo"]
    assert erl.out("exec", cid, "cat", "/sys/class/net/lo/operstate", check=False).strip() in ("unknown", "up")


def test_nsenter_host_network_container(erl, box):
    """With the host's network (the default), nsenter enters every other namespace."""
    need(shutil.which("nsenter") is not None, "util-linux nsenter")
    _, pid = box
    done = subprocess.run(["nsenter", "-t", str(pid), "-U", "-m", "-u", "-i", "-p", "--preserve-credentials",
                           "cat", "/etc/hostname"], capture_output=True, timeout=30)
    assert done.returncode == 0 and done.stdout == b"boxhost\n", done.stderr


def test_a_record_naming_a_process_of_the_host_never_runs_the_command_there(erl, tmp_path):
    """A record whose pid is not the container's any more (ended, the pid reused by a
    process of yours): exec refuses instead of "joining" namespaces it shares with it,
    which would run the command on the host."""
    cid = erl.out("create", "busybox", "sleep", "1000").strip()
    host = subprocess.Popen(["sleep", "60"])
    try:
        path = os.path.join(erl.root, "containers", cid, "container.json")
        with open(path) as f:
            rec = json.load(f)
        with open("/proc/%d/stat" % host.pid) as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        # The monitor is given as alive (this test) so that no reader settles the record.
        rec.update(status="running", pid=host.pid, pid_start=start,
                   monitor={"pid": os.getpid(), "start": own_start()})
        with open(path + ".new", "w") as f:
            json.dump(rec, f)
        os.rename(path + ".new", path)
        marker = tmp_path / "ran-on-the-host"
        refused = erl("exec", cid, "touch", str(marker), check=False)
        assert refused.returncode == 1, refused.stderr
        assert b"is not running" in refused.stderr
        assert not marker.exists()
        assert host.poll() is None
    finally:
        host.kill()
        host.wait()


def own_start() -> int:
    with open("/proc/self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])
