"""`run`, `create`, `start`, `rm`: real containers, run as the unprivileged test user.

The suite runs as a user with /etc/subuid ranges (full id mapping) and again as one
without (single-uid mode); tests whose expected outcome differs between the two modes
check the mode the probe chose and assert that mode's behaviour. The core run tests are
repeated for every rootfs driver (forced with --storage-driver).
"""

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import tarfile
import time

import pytest

from conftest import Rootless, have, need
from registries import make_registry  # noqa: F401  (a pytest fixture)

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


@pytest.fixture(autouse=True)
def no_container_outlives_its_test(request):
    """Whatever a test leaves (it failed half-way: a CLI still running, a container not
    removed) is ended and removed after it, so that it cannot fail the next test."""
    yield
    if "crl" not in request.fixturenames:
        return
    crl = request.getfixturevalue("crl")
    for pid in my_processes(crl.root):  # CLIs and keepers of this storage root
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for cid in crl.out("ps", "-a", "-q").split():
        crl("rm", "-f", cid, check=False)


@pytest.fixture(params=DRIVERS)
def driver(request):
    if request.param == "fuse-overlayfs":
        need(have("fuse-overlayfs") and os.access("/dev/fuse", os.R_OK | os.W_OK),
             "fuse-overlayfs and a usable /dev/fuse")
    return request.param


def run(crl, driver, *args, **kw):
    return crl("run", "--rm", "--storage-driver", driver, *args, **kw)


# Run first in a container, it prints the ids of its mount, user and pid namespaces: the
# same ids the host sees, so the host can look for anything still holding them.
PRINT_NAMESPACES = "for n in mnt user pid; do readlink /proc/self/ns/$n; done"


def my_pids():
    """Host pids of this user's processes, other than this test's."""
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                if os.stat("/proc/" + name).st_uid == os.getuid():
                    yield int(name)
            except OSError:
                pass


def cmdline(pid: int) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""  # gone (a zombie's is empty too)


def parent(pid: int) -> int:
    with open("/proc/%d/stat" % pid, "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[1])


def my_processes(pattern: str):
    """Host pids of our processes whose command line contains ``pattern``."""
    return [pid for pid in my_pids() if pattern in cmdline(pid)]


def namespaces_held(pid: int) -> set:
    """The namespaces ``pid`` is in, and those it holds open (nsfs descriptors)."""
    links = set()
    for sub in ("ns", "fd"):
        try:
            names = os.listdir("/proc/%d/%s" % (pid, sub))
        except OSError:
            continue
        for name in names:
            try:
                links.add(os.readlink("/proc/%d/%s/%s" % (pid, sub, name)))
            except OSError:
                pass
    return links


def leftovers(crl, namespaces) -> dict:
    """{pid: command line} of what a container can leave behind: any process of ours whose
    command line names the storage root (a CLI, its keeper, fuse-overlayfs, all of which
    hold the container's user namespace, and fuse-overlayfs its mounts), and any process
    in, or holding open, one of the container's ``namespaces`` (its mounts live as long
    as their mount namespace). Containers never reach the host's mount table, so that
    table could not show a leak."""
    wanted = set(namespaces)
    return {pid: cmdline(pid) for pid in my_pids()
            if crl.root in cmdline(pid) or namespaces_held(pid) & wanted}


def lines_until(proc, last: str, timeout=60) -> list:
    """The lines ``proc`` writes on stdout up to ``last`` (included), or fail at a deadline
    instead of hanging on a readline."""
    import select
    fd, data = proc.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while not data.endswith(last.encode() + b"\n"):
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], "no %r within %ds: %r" % (last, timeout, data)
        chunk = os.read(fd, 4096)
        assert chunk, "stdout closed before %r: %r" % (last, data)
        data += chunk
    return data.decode().splitlines()


def settled(probe, timeout=10, until=lambda value: not value):
    """``probe()`` once ``until`` it (by default: once it is empty), or its last value after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def busybox_with(test_images, dest: str, tag: str, **config) -> str:
    """A docker-archive of the busybox test image under ``tag`` with its image config's
    ``config`` changed (Entrypoint, Cmd, StopSignal): another image ID, the same layer."""
    with tarfile.open(os.path.join(test_images, "busybox-docker.tar")) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        image = json.load(tar.extractfile(manifest["Config"]))
        members = [(name, tar.extractfile(name).read()) for name in manifest["Layers"]]
    image["config"].update(config)
    blob = json.dumps(image).encode()
    name = hashlib.sha256(blob).hexdigest() + ".json"
    entry = {"Config": name, "RepoTags": [tag], "Layers": manifest["Layers"]}
    members += [(name, blob), ("manifest.json", json.dumps([entry]).encode())]
    with tarfile.open(dest, "w") as out:
        for member, data in members:
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            out.addfile(info, io.BytesIO(data))
    return dest


@pytest.fixture(scope="module")
def entry_image(crl, test_images, tmp_path_factory):
    """``entry:1``: busybox with an Entrypoint, a Cmd and a StopSignal of its own."""
    archive = busybox_with(test_images, str(tmp_path_factory.mktemp("entry") / "entry.tar"), "entry:1",
                           Entrypoint=["echo", "from-entrypoint"], Cmd=["from-cmd"], StopSignal="SIGQUIT")
    crl("load", "-i", archive)
    return "entry:1"


# -- exit codes ---------------------------------------------------------------------------------

def test_echo_hello_and_exit_codes(crl, driver):
    # A first container, started without --rm (so its directory, the fuse-overlayfs mount
    # point among it, stays until rm), leaves a process in the background. start returns
    # once the keeper has waited for the container and for fuse-overlayfs, and the kernel
    # ends a pid namespace's processes with its pid 1: nothing of it may run any more.
    cid = crl.out("create", "--storage-driver", driver, "busybox", "sh", "-c",
                  PRINT_NAMESPACES + "; sleep 1000 >/dev/null 2>&1 &").strip()
    namespaces = crl.out("start", "-a", cid).split()
    assert [n.split(":")[0] for n in namespaces] == ["mnt", "user", "pid"]
    assert leftovers(crl, namespaces) == {}
    crl("rm", cid)
    proc = run(crl, driver, "busybox", "echo", "hello")
    assert proc.stdout == b"hello\n" and proc.returncode == 0
    assert run(crl, driver, "busybox", "sh", "-c", "exit 3", check=False).returncode == 3
    missing = run(crl, driver, "busybox", "no-such-command", check=False)
    assert missing.returncode == 127
    assert missing.stderr.decode().count("\n") == 1 and "no-such-command" in missing.stderr.decode()
    noexec = run(crl, driver, "busybox", "/etc/passwd", check=False)
    assert noexec.returncode == 126 and "permission denied" in noexec.stderr.decode()
    # Nor of the --rm runs: no CLI, keeper or fuse-overlayfs of this storage root is left.
    assert leftovers(crl, namespaces) == {}
    assert crl.out("ps", "-a", "-q") == ""  # --rm removed every one of them


def test_unknown_image_is_a_one_line_125(crl, make_registry, tmp_path, monkeypatch):
    proc = crl("run", "--rm", "--pull=never", "no-such-image", "true", check=False)
    assert proc.returncode == 125
    err = proc.stderr.decode()
    assert err.startswith("rootless: error: ") and err.count("\n") == 1 and "no-such-image" in err
    # By default run tries to pull it: progress lines, then the one-line error. The registry
    # is a local one (no test leaves 127.0.0.0/8), listed as insecure as a user would.
    reg = make_registry("http")
    config = tmp_path / "config"
    (config / "rootless").mkdir(parents=True)
    (config / "rootless" / "registries.json").write_text(json.dumps({"insecure-registries": [reg.host]}))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    proc = crl("run", "--rm", reg.host + "/no-such-image", "true", check=False)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 125 and lines[-1].startswith("rootless: error: ")
    assert sum(l.startswith("rootless: error: ") for l in lines) == 1
    assert "Pulling from " + reg.host + "/no-such-image" in lines[0] and "no-such-image" in lines[-1]
    # It really asked the registry (distribution logs the 404 it answered).
    assert "http.request.uri=/v2/no-such-image/manifests/latest" in reg.log()
    assert crl.out("images", "-q", reg.host + "/no-such-image") == ""


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


def root_mount_options(crl, *args) -> list:
    out = crl.out(*args, "busybox", "awk", '$5 == "/" {print $NF}', "/proc/self/mountinfo")
    return out.strip().split(",")


def test_rm_mounts_the_writable_layer_volatile(crl):
    """Kernel overlayfs syncs the whole file system of the upper directory when the mount
    goes; a ``--rm`` container's layer is thrown away, so it is mounted ``volatile``
    (shown as ``volatile`` or, on newer kernels, ``fsync=volatile``) and a kept one is not.
    A ``--rm`` container that ``cp`` wrote into before its start mounts its layer twice."""
    volatile = {"volatile", "fsync=volatile"}
    assert volatile & set(root_mount_options(crl, "run", "--rm", "--storage-driver", "overlay"))
    cid = crl.out("create", "--storage-driver", "overlay", "busybox", "awk", '$5 == "/" {print $NF}',
                  "/proc/self/mountinfo").strip()
    assert not volatile & set(crl.out("start", "-a", cid).strip().split(","))
    crl("rm", cid)
    cid = crl.out("create", "--rm", "--storage-driver", "overlay", "busybox", "cat", "/given").strip()
    crl("cp", "/etc/hostname", cid + ":/given")
    with open("/etc/hostname") as f:
        assert crl.out("start", "-a", cid) == f.read()
    assert cid[:12] not in crl.out("ps", "-a", "-q").split()


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


def test_privileged_unmasks_and_gives_every_capability(crl, mode):
    need(os.path.exists("/proc/keys"), "a kernel with /proc/keys (CONFIG_KEYS), a masked path to look at")
    script = ("stat -c '%F %t:%T' /proc/keys; ls /sys/firmware | wc -l; "
              "awk '$5 ~ /^\\/proc\\/(keys|sys)$/' /proc/self/mountinfo | wc -l; "
              "grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; "
              "{ echo x > /proc/sys/kernel/hostname; } 2>&1; true")
    plain = crl.out("run", "--rm", "busybox", "sh", "-c", script).split("\n")
    privileged = crl.out("run", "--rm", "--privileged", "busybox", "sh", "-c", script).split("\n")
    # Masked paths: /proc/keys is /dev/null bound over it, /sys/firmware an empty tmpfs,
    # and /proc/sys a read-only bind; --privileged has none of those mounts.
    assert plain[0] == "character special file 1:3"
    assert privileged[0] == "regular empty file 0:0"  # the kernel's own file (size 0 in /proc)
    assert plain[1].strip() == "0"
    assert int(privileged[1]) == len(os.listdir("/sys/firmware")) > 0  # the host's /sys
    assert (plain[2].strip(), privileged[2].strip()) == ("2", "0")
    # Every capability rootless knows (CAP_CHOWN .. CAP_CHECKPOINT_RESTORE = 40), as far
    # as this kernel has them, instead of Docker's 14.
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = min(int(f.read()), 40)
    assert plain[3].split()[1] == "00000000a80425fb"
    assert int(privileged[3].split()[1], 16) == (1 << (last + 1)) - 1
    # no_new_privs is off, except with one id: there the seccomp filter that fakes chown
    # needs it.
    assert plain[4].split() == ["NoNewPrivs:", "1"]
    assert privileged[4].split() == ["NoNewPrivs:", "0" if mode == "subuid" else "1"]
    # /proc/sys is no longer a read-only mount: a write reaches the kernel, which refuses
    # it for its own reason (the file belongs to the host's root).
    assert plain[5].endswith(": Read-only file system")
    assert privileged[5].endswith(": Permission denied")


def test_stdin_is_forwarded_only_with_i(crl):
    assert crl.out("run", "--rm", "-i", "busybox", "cat", input=b"data\n") == "data\n"
    assert crl.out("run", "--rm", "busybox", "cat", input=b"data\n") == ""


# An orphan: a sleep whose parent shell exits at once, so the kernel hands it to pid 1. The
# watcher reports its state and parent ("S 1": re-parented, still sleeping), then waits
# until it is gone (reaped) or a zombie of pid 1 ("Z 1"), whichever the test names. The
# command's own pid 1 is `cat` of a fifo, which never waits for a child; the watcher ends
# it through the fifo.
ORPHAN_WATCH = r"""
mkfifo /tmp/end
{
  sh -c 'sleep 1 & echo $! > /tmp/orphan'
  o=$(cat /tmp/orphan)
  look() { s=$(cut -d' ' -f3,4 /proc/$o/stat 2>/dev/null) || s=gone; }
  n=0; look
  while [ "$s" != "S 1" ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); look; done
  echo "orphan: $s"
  n=0; look
  while [ "$s" != "$1" ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); look; done
  echo "then: $s"
  echo > /tmp/end
} &
exec cat /tmp/end > /dev/null
"""


def test_init_is_pid_1_and_reaps(crl):
    out = crl.out("run", "--rm", "--init", "busybox", "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '")
    pid, init_cmd = out.split("\n")[:2]
    assert pid != "1" and "python" in init_cmd
    # With --init, pid 1 is rootless's init: the orphan is re-parented to it and reaped.
    out = crl.out("run", "--rm", "--init", "busybox", "sh", "-c", ORPHAN_WATCH, "sh", "gone")
    assert out.split("\n")[:2] == ["orphan: S 1", "then: gone"]
    # Without it, pid 1 is the command itself, which never waits: the orphan stays a zombie.
    out = crl.out("run", "--rm", "busybox", "sh", "-c", ORPHAN_WATCH, "sh", "Z 1")
    assert out.split("\n")[:2] == ["orphan: S 1", "then: Z 1"]


@pytest.mark.parametrize("init", [False, True])
@pytest.mark.parametrize("sig", ["TERM", "INT"])
def test_signals_reach_the_container(crl, init, sig):
    script = "trap 'echo got-%s; exit 7' %s; echo ready; while :; do sleep 0.1; done" % (sig, sig)
    args = ["run", "--rm"] + (["--init"] if init else []) + ["busybox", "sh", "-c", script]
    proc = crl.popen(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert lines_until(proc, "ready") == ["ready"]
        proc.send_signal(getattr(signal, "SIG" + sig))  # SIGINT: Ctrl-C without -t
        out, _ = proc.communicate(timeout=30)
        assert out == ("got-%s\n" % sig).encode() and proc.returncode == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_kill_9_of_the_cli_leaves_nothing(crl, driver):
    # A marker no other test run of this user (at the same time) has in its command line.
    marker = "sleep %d%d" % (4200000 + os.getpid() % 100000, DRIVERS.index(driver))
    proc = crl.popen("run", "--rm", "--storage-driver", driver, "busybox", "sh", "-c",
                     PRINT_NAMESPACES + "; echo ready; exec " + marker,
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    namespaces = []
    try:
        *namespaces, ready = lines_until(proc, "ready")
        assert [n.split(":")[0] for n in namespaces] == ["mnt", "user", "pid"]
        # The container's process, once its shell has exec'd the marker (just after "ready").
        [container] = settled(lambda: [pid for pid in my_processes(marker) if cmdline(pid).strip() == marker],
                              until=bool)
        # The container's first process is the CLI's own child (the keeper forked it as a
        # sibling); with fuse-overlayfs the keeper stays, as fuse-overlayfs's parent.
        assert parent(container) == proc.pid
        fuse = [pid for pid in my_processes("fuse-overlayfs -f") if parent(parent(pid)) == proc.pid]
        assert len(fuse) == (driver == "fuse-overlayfs")
        keepers = [parent(pid) for pid in fuse]
        # What leftovers() looks for is there while the container runs: the CLI, the
        # container, and with fuse-overlayfs the keeper and fuse-overlayfs.
        assert set(leftovers(crl, namespaces)) >= {proc.pid, container, *keepers, *fuse}
        proc.kill()
        proc.wait(timeout=30)
        # The container and the keeper die of the CLI's death (pdeathsig), fuse-overlayfs
        # of the keeper's: each exits a few milliseconds after the one before, so wait
        # (with a deadline) for all of them.
        assert settled(lambda: leftovers(crl, namespaces)) == {}
        # The next command settles the dead container: it had --rm, so it is gone.
        assert crl.out("ps", "-a", "-q") == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        for pid in leftovers(crl, namespaces):  # what this test found left, so the next can pass
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_tty_through_tmux(crl, tmp_path):
    need(have("tmux"), "tmux (to drive -it through a real terminal)")
    sock = str(tmp_path / "tmux.sock")
    done = str(tmp_path / "done")
    cmd = " ".join(crl.base) + " run -it --rm busybox sh; echo EXIT=$? > " + done
    tmux = ["tmux", "-S", sock]
    subprocess.run(tmux + ["new-session", "-d", "-x", "100", "-y", "30", cmd], check=True, env=crl.env())
    try:
        def tmux_out(*args):
            return subprocess.run(tmux + list(args), capture_output=True).stdout.decode().strip()

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
        deadline = time.monotonic() + 20
        while tmux_out("display", "-p", "#{window_width}x#{window_height}") != "120x40":
            assert time.monotonic() < deadline, "tmux never resized its window"
            time.sleep(0.05)
        # The CLI copies the new size to the container's pty when its SIGWINCH arrives, which
        # may be after a first `stty size` ran: ask again until the new size shows.
        for attempt in range(20):
            subprocess.run(tmux + ["send-keys", "stty size", "Enter"], check=True)
            try:
                wait_for("40 120", timeout=1)
                break
            except AssertionError:
                continue
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
    proc = crl("--debug", "run", "--name", "labelled", "--env-file", str(env_file), "-e", "OVERRIDDEN=flag",
               "-h", "myhost", "-l", "team=hpc", "--label", "bare", "busybox", "sh", "-c",
               "echo $FROM_FILE $OVERRIDDEN; hostname; grep myhost /etc/hosts")
    lines = proc.stdout.decode().split("\n")
    assert lines[0] == "yes flag" and lines[1] == "myhost" and "myhost" in lines[2]
    err = proc.stderr.decode()
    assert "driver overlay" in err or "driver copy" in err or "driver fuse-overlayfs" in err
    assert "mount plan: ('mount', 'proc', '/proc', 'proc'" in err
    # The labels are the container's: in ps (Docker's .Label "k" and "k=v,..." .Labels) and as
    # label.* annotations of its bundle.
    assert crl.out("ps", "-a", "--format", '{{.Names}} {{.Label "team"}} {{json .Labels}}').split("\n")[0] \
        == 'labelled hpc "bare=,team=hpc"'
    cid = crl.out("ps", "-a", "-q", "--no-trunc").strip()
    annotations = bundle(crl, cid)["annotations"]
    assert (annotations["label.team"], annotations["label.bare"]) == ("hpc", "")
    crl("rm", "labelled")


def test_generated_names_and_ps(crl):
    cid = crl.out("create", "busybox", "true").strip()
    line = [l for l in crl.out("ps", "-a", "--no-trunc").splitlines() if cid in l][0]
    assert re.search(r"\b[a-z]+_[a-z]+\d*\s*$", line) and "Created" in line
    assert crl.out("ps", "-q") == ""  # nothing running
    crl("rm", cid[:12])
    missing = crl("rm", cid[:12], check=False)
    assert missing.returncode == 125 and "No such container" in missing.stderr.decode()


def bundle(crl, cid: str) -> dict:
    """The container's config.json (the OCI bundle rootless wrote at create)."""
    with open(os.path.join(crl.root, "containers", cid, "config.json")) as f:
        return json.load(f)


def test_stop_signal_is_recorded_in_the_bundle(crl, entry_image):
    def recorded(*args):
        cid = crl.out("create", *args).strip()
        try:
            return bundle(crl, cid)["annotations"]["org.opencontainers.image.stopSignal"]
        finally:
            crl("rm", cid)
    assert recorded("busybox", "true") == "SIGTERM"  # Docker's default
    assert recorded("--stop-signal", "SIGUSR1", "busybox", "true") == "SIGUSR1"
    assert recorded(entry_image) == "SIGQUIT"  # the image's StopSignal
    assert recorded("--stop-signal", "HUP", entry_image) == "HUP"  # the flag wins
    bad = crl("run", "--rm", "--stop-signal", "SIGNOPE", "busybox", "true", check=False)
    err = bad.stderr.decode()
    assert bad.returncode == 125 and err.count("\n") == 1 and err.startswith("rootless: error: ")
    assert "SIGNOPE" in err and crl.out("ps", "-a", "-q") == ""


def test_dns_options_reach_resolv_conf(crl):
    out = crl.out("run", "--rm", "--dns-option", "ndots:2", "--dns-option", "edns0", "busybox",
                  "grep", "^options", "/etc/resolv.conf")
    assert out == "options ndots:2 edns0\n"  # replacing the host's options line, if any


def test_entrypoint_through_run(crl, entry_image):
    assert crl.out("run", "--rm", entry_image) == "from-entrypoint from-cmd\n"
    assert crl.out("run", "--rm", entry_image, "an-arg") == "from-entrypoint an-arg\n"  # args replace Cmd
    # --entrypoint replaces the image's, and drops the image's Cmd.
    assert crl.out("run", "--rm", "--entrypoint", "echo", entry_image) == "\n"
    assert crl.out("run", "--rm", "--entrypoint", "printf", entry_image, "%s-%s", "a", "b") == "a-b"
    # --entrypoint "" clears it: the arguments alone are the command, and with none there
    # is no command (Docker's "no command specified").
    assert crl.out("run", "--rm", "--entrypoint", "", entry_image, "echo", "alone") == "alone\n"
    none = crl("run", "--rm", "--entrypoint", "", entry_image, check=False)
    err = none.stderr.decode()
    assert none.returncode == 125 and err.count("\n") == 1 and "no command specified" in err


def test_namespaces_are_the_containers_own(crl, driver):
    """Every namespace is the container's own, the network too (the default network is a
    private one in CI, where slirp4netns is installed); --network host shares the host's."""
    kinds = ["ipc", "cgroup", "user", "uts", "pid", "mnt", "net"]
    need(os.path.exists("/proc/self/ns/cgroup"), "a kernel with cgroup namespaces")
    script = "for n in %s; do readlink /proc/self/ns/$n; done" % " ".join(kinds)
    host = [os.readlink("/proc/self/ns/" + kind) for kind in kinds]
    default = crl.out("info", "--format", "{{.Network.Default}}").strip()
    need(default != "host" or not os.environ.get("ROOTLESS_CI"), "slirp4netns or pasta, for a private default network")
    for network in ([] if default == "host" else [[]]) + [["--network", "host"]]:
        inside = run(crl, driver, *network, "busybox", "sh", "-c", script).stdout.decode().split()
        assert [link.split(":")[0] for link in inside] == kinds
        for kind, theirs, ours in zip(kinds, inside, host):
            if kind == "net" and network:
                assert theirs == ours, "--network host is not the host's network"
            else:
                assert theirs != ours, "the container shares the host's %s namespace (%s)" % (kind, network)


def test_sys_is_read_only(crl):
    script = ("mkdir /sys/rootless-probe; echo 0 > /sys/kernel/uevent_helper; "
              "awk '$5 ~ /^\\/sys(\\/|$)/ {print $5, $6}' /proc/self/mountinfo")
    proc = crl("run", "--rm", "busybox", "sh", "-c", script, check=False)
    errors = proc.stderr.decode().splitlines()
    assert len(errors) == 2 and all(e.endswith("Read-only file system") for e in errors), errors
    mounts = [line.split() for line in proc.stdout.decode().splitlines()]
    assert mounts[0][0] == "/sys"
    # Every mount there, the host's cgroup hierarchies below /sys/fs/cgroup included.
    assert [point for point, options in mounts if "ro" not in options.split(",")] == []
