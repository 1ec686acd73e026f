"""`run`, `create`, `start`, `rm`: real containers, run as the unprivileged test user.

The suite runs as a user with /etc/subuid ranges (full id mapping) and again as one
without (single-uid mode); tests whose expected outcome differs between the two modes
check the mode the probe chose and assert that mode's behaviour. The core run tests are
repeated for every rootfs driver (forced with --storage-driver).
"""

import os
import re
import signal
import subprocess
import time

import pytest

from conftest import Rootless, have, need

DRIVERS = ["overlay", "fuse-overlayfs", "copy"]


@pytest.fixture(scope="module")
def crl(tmp_path_factory, test_images):
    """One storage root for the module, with busybox and debian loaded."""
    need(os.getuid() != 0, "containers must be run as an unprivileged user (bash .ci/run does)")
    root = Rootless(str(tmp_path_factory.mktemp("run") / "root"))
    root("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    root("load", "-i", os.path.join(test_images, "debian-docker.tar"))
    yield root
    root("system", "reset", "--force", check=False)


@pytest.fixture(scope="module")
def mode(crl):
    out = crl.out("info")
    found = re.search(r"Id mapping: (\S+)", out)
    assert found, out
    return found.group(1)


@pytest.fixture(params=DRIVERS)
def driver(request):
    if request.param == "fuse-overlayfs":
        need(have("fuse-overlayfs") and os.access("/dev/fuse", os.R_OK | os.W_OK),
             "fuse-overlayfs and a usable /dev/fuse")
    return request.param


def run(crl, driver, *args, **kw):
    return crl("run", "--rm", "--storage-driver", driver, *args, **kw)


def host_mountinfo():
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split(" ", 4)[4] for line in f)  # without the mount ids


def my_processes(pattern: str):
    """Host pids of our processes whose command line contains ``pattern``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if os.stat("/proc/" + pid).st_uid != os.getuid():
                continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pattern in cmdline:
            found.append(int(pid))
    return found


# -- exit codes ---------------------------------------------------------------------------------

def test_echo_hello_and_exit_codes(crl, driver):
    before = host_mountinfo()
    proc = run(crl, driver, "busybox", "echo", "hello")
    assert proc.stdout == b"hello\n" and proc.returncode == 0
    assert run(crl, driver, "busybox", "sh", "-c", "exit 3", check=False).returncode == 3
    missing = run(crl, driver, "busybox", "no-such-command", check=False)
    assert missing.returncode == 127
    assert missing.stderr.decode().count("\n") == 1 and "no-such-command" in missing.stderr.decode()
    noexec = run(crl, driver, "busybox", "/etc/passwd", check=False)
    assert noexec.returncode == 126 and "permission denied" in noexec.stderr.decode()
    assert host_mountinfo() == before
    assert crl.out("ps", "-a", "-q") == ""  # --rm removed every one of them


def test_unknown_image_is_a_one_line_125(crl):
    proc = crl("run", "--rm", "--pull=never", "no-such-image", "true", check=False)
    assert proc.returncode == 125
    err = proc.stderr.decode()
    assert err.startswith("rootless: error: ") and err.count("\n") == 1 and "no-such-image" in err
    # By default run tries to pull it (from Docker Hub, which this machine cannot reach):
    # progress lines, then the one-line error.
    proc = crl("run", "--rm", "no-such-image", "true", check=False)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 125 and lines[-1].startswith("rootless: error: ")
    assert sum(l.startswith("rootless: error: ") for l in lines) == 1


def test_container_world(crl, driver):
    script = ("echo pid=$$; hostname; cat /etc/hostname; ps -o comm | tr '\\n' ' '; echo; "
              "cat /proc/keys | wc -c; ls /sys/firmware | wc -l; "
              "if echo 1 > /proc/sys/kernel/hostname; then echo sys-writable; fi; "
              "grep NoNewPrivs /proc/self/status; grep CapEff /proc/self/status; tty; "
              "ls -d /dev/pts /dev/shm /dev/mqueue; readlink /dev/ptmx; readlink /dev/fd; "
              "grep -c localhost /etc/hosts; grep 127.0.1.1 /etc/hosts")
    out = run(crl, driver, "busybox", "sh", "-c", script).stdout.decode().split("\n")
    assert out[0] == "pid=1"
    short_id = out[1]
    assert re.match(r"^[0-9a-f]{12}$", short_id) and out[2] == short_id
    assert set(out[3].split()) <= {"COMMAND", "sh", "ps", "tr", "exe"}  # no host process
    # is visible ("exe": busybox runs some applets of a pipeline through /proc/self/exe)
    assert out[4].strip() == "0"  # /proc/keys masked (bound to /dev/null)
    assert out[5].strip() == "0"  # /sys/firmware masked (empty tmpfs)
    assert "sys-writable" not in out
    assert out[6].split() == ["NoNewPrivs:", "1"]
    assert out[7].split()[1] == "00000000a80425fb"  # Docker's default capability set
    assert out[8] == "not a tty"
    assert out[9:12] == ["/dev/mqueue", "/dev/pts", "/dev/shm"]
    assert out[12:14] == ["pts/ptmx", "/proc/self/fd"]
    assert int(out[14]) >= 1 and short_id in out[15]


def test_proc_kcore_is_masked_when_the_host_has_it(crl):
    if not os.path.exists("/proc/kcore"):
        # This kernel has no /proc/kcore; the same masking is checked on /proc/keys above.
        assert crl("run", "--rm", "busybox", "test", "-e", "/proc/kcore", check=False).returncode == 1
        return
    out = crl.out("run", "--rm", "busybox", "sh", "-c", "wc -c < /proc/kcore")
    assert out.strip() == "0"


def test_debian_user_and_ids(crl, driver, mode):
    assert run(crl, driver, "debian", "id").stdout.decode().startswith("uid=0(root) gid=0(root)")
    out = run(crl, driver, "-u", "1000:1000", "debian", "id").stdout.decode()
    assert out.startswith("uid=1000 gid=1000")
    named = run(crl, driver, "-u", "nobody", "debian", "id", "-un").stdout.decode().strip()
    assert named == "nobody"
    owner = run(crl, driver, "debian", "stat", "-c", "%u:%g", "/opt/owned-by-42").stdout.decode().strip()
    if mode == "subuid":
        assert owner == "42:42"
    else:
        assert mode == "single-uid" and owner == "0:0"  # squashed: only one id exists


def test_package_manager_calls_succeed(crl, driver, mode):
    script = "touch f && chown 42:42 f && chgrp 7 f && dpkg --configure -a && stat -c %u:%g f"
    proc = run(crl, driver, "-w", "/root", "debian", "sh", "-c", script, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    # With sub-ids the change is real; with one id it is accepted and has no effect.
    assert proc.stdout.decode().strip() == ("42:7" if mode == "subuid" else "0:0")


def test_create_then_start_keeps_the_writable_layer(crl, driver):
    cid = crl.out("create", "--storage-driver", driver, "--name", "keep-" + driver, "busybox",
                  "sh", "-c", "echo run >> /count; wc -l < /count").strip()
    assert re.match(r"^[0-9a-f]{64}$", cid)
    assert crl.out("start", "-a", "keep-" + driver).strip() == "1"
    assert crl.out("start", "-a", cid[:12]).strip() == "2"
    listing = crl.out("ps", "-a")
    assert "keep-" + driver in listing and "Exited (0)" in listing
    crl("rm", "keep-" + driver)
    assert "keep-" + driver not in crl.out("ps", "-a")


def test_name_must_be_unique(crl):
    crl("create", "--name", "twice", "busybox", "true")
    proc = crl("create", "--name", "twice", "busybox", "true", check=False)
    assert proc.returncode == 125 and "already in use" in proc.stderr.decode()
    crl("rm", "twice")


def test_environment_workdir_and_etc_files(crl, monkeypatch):
    monkeypatch.setenv("FROM_HOST", "host-value")
    out = crl.out("run", "--rm", "-e", "A=1", "-e", "FROM_HOST", "-w", "/made/here", "--add-host", "db:10.0.0.7",
                  "--dns", "192.0.2.53", "--dns-search", "example.test", "busybox", "sh", "-c",
                  "echo $A $FROM_HOST; echo $PATH; pwd; grep db /etc/hosts; cat /etc/resolv.conf")
    lines = out.split("\n")
    assert lines[0] == "1 host-value"
    assert lines[1] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert lines[2] == "/made/here"
    assert lines[3].split() == ["10.0.0.7", "db"]
    assert "nameserver 192.0.2.53" in out and "search example.test" in out


def test_read_only_and_capabilities(crl):
    proc = crl("run", "--rm", "--read-only", "busybox", "touch", "/x", check=False)
    assert proc.returncode == 1 and b"Read-only" in proc.stderr
    assert crl.out("run", "--rm", "--read-only", "busybox", "sh", "-c", "echo ok > /dev/shm/f && cat /dev/shm/f") == "ok\n"
    out = crl.out("run", "--rm", "--cap-drop", "ALL", "busybox", "grep", "CapEff", "/proc/self/status")
    assert out.split()[1] == "0000000000000000"
    out = crl.out("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "grep", "CapEff", "/proc/self/status")
    assert int(out.split()[1], 16) & (1 << 21)
    assert crl.out("run", "--rm", "--privileged", "busybox", "sh", "-c", "wc -c < /proc/keys").strip() != "0" \
        or os.path.getsize("/proc/keys") == 0


def test_stdin_is_forwarded_only_with_i(crl):
    assert crl.out("run", "--rm", "-i", "busybox", "cat", input=b"data\n") == "data\n"
    assert crl.out("run", "--rm", "busybox", "cat", input=b"data\n") == ""


def test_init_is_pid_1_and_reaps(crl):
    out = crl.out("run", "--rm", "--init", "busybox", "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '")
    pid, init_cmd = out.split("\n")[:2]
    assert pid != "1" and "python" in init_cmd


@pytest.mark.parametrize("init", [False, True])
def test_signals_reach_the_container(crl, init):
    script = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"
    args = ["run", "--rm"] + (["--init"] if init else []) + ["busybox", "sh", "-c", script]
    proc = crl.popen(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert out == b"got-term\n" and proc.returncode == 7


def test_kill_9_of_the_cli_leaves_nothing(crl, driver):
    before = host_mountinfo()
    marker = "sleep 4242%s" % DRIVERS.index(driver)
    proc = crl.popen("run", "--rm", "--storage-driver", driver, "busybox", "sh", "-c",
                     "echo ready; exec " + marker, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    assert my_processes(marker)
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while my_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert my_processes(marker) == []
    assert my_processes("fuse-overlayfs") == []
    assert host_mountinfo() == before
    # The next command settles the dead container: it had --rm, so it is gone.
    assert crl.out("ps", "-a", "-q") == ""


def test_tty_through_tmux(crl, tmp_path):
    need(have("tmux"), "tmux (to drive -it through a real terminal)")
    sock = str(tmp_path / "tmux.sock")
    done = str(tmp_path / "done")
    cmd = " ".join(crl.base) + " run -it --rm busybox sh; echo EXIT=$? > " + done
    tmux = ["tmux", "-S", sock]
    subprocess.run(tmux + ["new-session", "-d", "-x", "100", "-y", "30", cmd], check=True, env=crl.env())
    try:
        def screen():
            return subprocess.run(tmux + ["capture-pane", "-p"], capture_output=True).stdout.decode()

        def wait_for(text, timeout=20):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if text in screen():
                    return
                time.sleep(0.05)
            raise AssertionError("%r never appeared:\n%s" % (text, screen()))
        wait_for("/ #")
        subprocess.run(tmux + ["send-keys", "tty; stty size", "Enter"], check=True)
        wait_for("30 100")
        assert "/dev/pts/0" in screen()
        subprocess.run(tmux + ["resize-window", "-x", "120", "-y", "40"], check=True)
        time.sleep(0.3)
        subprocess.run(tmux + ["send-keys", "stty size", "Enter"], check=True)
        wait_for("40 120")
        subprocess.run(tmux + ["send-keys", "exit 5", "Enter"], check=True)
        deadline = time.monotonic() + 20
        while not os.path.exists(done) and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(done) as f:
            assert f.read().strip() == "EXIT=5"
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)


def test_keep_id_runs_as_my_uid(crl):
    out = crl.out("run", "--rm", "--userns=keep-id", "busybox", "sh", "-c", "id -u; id -g; stat -c %u /bin/busybox")
    uid, gid, owner = out.split()
    assert (int(uid), int(gid)) == (os.getuid(), os.getgid())
    assert int(owner) == os.getuid()  # the image's root-owned files are mine, at my number


def test_env_file_hostname_labels_and_debug(crl, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nFROM_FILE=yes\nOVERRIDDEN=file\n")
    proc = crl("--debug", "run", "--rm", "--env-file", str(env_file), "-e", "OVERRIDDEN=flag",
               "-h", "myhost", "-l", "team=hpc", "busybox", "sh", "-c",
               "echo $FROM_FILE $OVERRIDDEN; hostname; grep myhost /etc/hosts")
    lines = proc.stdout.decode().split("\n")
    assert lines[0] == "yes flag" and lines[1] == "myhost" and "myhost" in lines[2]
    err = proc.stderr.decode()
    assert "driver overlay" in err or "driver copy" in err or "driver fuse-overlayfs" in err
    assert "mount plan: ('mount', 'proc', '/proc', 'proc'" in err


def test_generated_names_and_ps(crl):
    cid = crl.out("create", "busybox", "true").strip()
    line = [l for l in crl.out("ps", "-a", "--no-trunc").splitlines() if cid in l][0]
    assert re.search(r"\b[a-z]+_[a-z]+\d*\s*$", line) and "Created" in line
    assert crl.out("ps", "-q") == ""  # nothing running
    crl("rm", cid[:12])
    missing = crl("rm", cid[:12], check=False)
    assert missing.returncode == 125 and "No such container" in missing.stderr.decode()
