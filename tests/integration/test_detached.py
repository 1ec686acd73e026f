"""Detached containers (`run -d`, `start`, `stop`, `kill`, `rm -f`, `logs -f`) and their
monitor, on real containers as the unprivileged test users.

The module has a storage root and a run dir of its own (XDG_RUNTIME_DIR), so that its
monitor is found by the run dir in its command line and nothing else shares it. What a
container leaves behind is looked for as test_run.py does: through the namespaces its
first process prints. Waits are deadlines around a probe, never a fixed sleep.
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import Rootless, need
from test_run import DRIVERS, PRINT_NAMESPACES, cmdline, leftovers, lines_until, my_pids, parent, settled  # noqa: F401
from test_run import driver  # noqa: F401  (a pytest fixture)

HEX64 = re.compile(r"[0-9a-f]{64}")
TICKER = "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.1; done"


class Detached(Rootless):
    """Rootless with a private run dir: this module's monitor is its own."""

    def __init__(self, root: str, xdg: str):
        super().__init__(root)
        self.xdg = xdg
        self.run_dir = os.path.join(xdg, "rootless")

    def env(self):
        env = super().env()
        env["XDG_RUNTIME_DIR"] = self.xdg
        return env


def detached_root(tmp_path_factory, test_images, name: str, archives=("busybox-docker.tar",)):
    """The body of a module fixture (``yield from`` it): a ``Detached`` root of its own, with
    a private run dir, test images loaded; reset when the module is done."""
    need(os.getuid() != 0, "containers must be run as an unprivileged user (bash .ci/run does)")
    base = tmp_path_factory.mktemp(name)
    xdg = base / "xdg"
    xdg.mkdir(mode=0o700)
    root = Detached(str(base / "root"), str(xdg))
    for archive in archives:
        root("load", "-i", os.path.join(test_images, archive))
    yield root
    root("system", "reset", "--force", check=False)


def end_what_is_left(rl) -> None:
    """After a test: what it left (a CLI, a shell of its own, a container) is ended and
    removed, and the test after it starts with no monitor: one that outlived its
    containers would hide a failure to spawn a new one."""
    for pid in ours(rl.root):
        kill(pid, signal.SIGKILL)
    for cid in rl.out("ps", "-a", "-q").split():
        rl("rm", "-f", cid, check=False)
    assert settled(lambda: monitors(rl)) == [], "the monitor outlived its last container"


@pytest.fixture(scope="module")
def drl(tmp_path_factory, test_images):
    yield from detached_root(tmp_path_factory, test_images, "detached")


@pytest.fixture(autouse=True)
def nothing_outlives_its_test(drl):
    yield
    end_what_is_left(drl)


# -- probes -------------------------------------------------------------------------------------

def kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def state(pid: int) -> str:
    """The process state letter, "" when gone (a zombie, Z, counts as gone: pid 1 on this
    machine does not reap the orphans it adopts)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            value = f.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return ""
    return "" if value in ("Z", "X") else value


def ours(text: str) -> list:
    """Our live processes whose command line contains ``text``."""
    return [pid for pid in my_pids() if text in cmdline(pid) and state(pid)]


def monitors(drl) -> list:
    """This module's live monitors (their command line names the socket in our run dir),
    and the keepers they forked (the same command line) that hold a fuse-overlayfs."""
    return ours(drl.run_dir)


def record(drl, cid: str) -> dict:
    with open(os.path.join(drl.root, "containers", cid, "container.json")) as f:
        return json.load(f)


def status(drl, ref: str) -> str:
    """ps -a's STATUS of the container named, or with an ID starting with, ``ref``."""
    for line in drl.out("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Status}}").splitlines():
        cid, name, shown = line.split(" ", 2)
        if ref in (cid[:len(ref)], name):
            return shown
    return ""


def statuses(drl) -> dict:
    return dict(line.split(" ", 1) for line in
                drl.out("ps", "-a", "--format", "{{.Names}} {{.Status}}").splitlines())


def table(text: str) -> list:
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]


def logged(drl, ref: str) -> list:
    return drl.out("logs", ref).splitlines()


def run_d(drl, *args, timeout=20) -> str:
    """``run -d``: its one line, the full ID, printed and returned while the container runs."""
    began = time.monotonic()
    proc = drl("run", "-d", *args)
    assert time.monotonic() - began < timeout, "run -d waited for the container"
    out = proc.stdout.decode()
    assert HEX64.fullmatch(out.strip()) and out.count("\n") == 1, out
    return out.strip()


def namespaces_of(drl, cid: str) -> list:
    """The mnt, user and pid namespaces a container started with PRINT_NAMESPACES printed."""
    lines = settled(lambda: logged(drl, cid), until=lambda out: len(out) >= 3)
    assert [n.split(":")[0] for n in lines[:3]] == ["mnt", "user", "pid"], lines
    return lines[:3]


def gone(drl, cid: str, namespaces) -> None:
    """Nothing of the container is left: no record, no file in the run dir, no process."""
    assert not os.path.exists(os.path.join(drl.root, "containers", cid))
    for top, dirs, files in os.walk(drl.run_dir):
        assert not [n for n in dirs + files if cid in n], (top, dirs, files)
    assert settled(lambda: leftovers(drl, namespaces)) == {}


# -- 1. the seed sequence -------------------------------------------------------------------------

def test_seed_sequence(drl, driver):
    graceful = run_d(drl, "--storage-driver", driver, "--name", "graceful", "busybox", "sh", "-c",
                     PRINT_NAMESPACES + "; trap 'exit 7' TERM; while :; do sleep 0.1; done")
    plain = run_d(drl, "--storage-driver", driver, "--name", "plain", "busybox", "sleep", "1000")
    stubborn = run_d(drl, "--storage-driver", driver, "--name", "stubborn", "busybox", "sh", "-c",
                     "trap '' TERM; while :; do sleep 0.1; done")
    namespaces = namespaces_of(drl, graceful)
    header, *rows = drl.out("ps").splitlines()
    assert re.match(r"CONTAINER ID   IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$", header), header
    cells = {r[-1]: r for r in table("\n".join(rows))}
    assert sorted(cells) == ["graceful", "plain", "stubborn"]
    for cid, name in ((graceful, "graceful"), (plain, "plain"), (stubborn, "stubborn")):
        assert cells[name][0] == cid[:12] and cells[name][1] == "busybox"
        assert re.fullmatch(r"Up (Less than a second|\d+ seconds?)", cells[name][4]), cells[name]
    assert cells["plain"][2] == '"sleep 1000"'
    assert drl.out("ps", "-a", "-q", "-f", "status=exited") == ""

    given = drl.out("ps", "-a", "-q").split()
    began = time.monotonic()
    stop = drl("stop", "-t", "2", *given)
    took = time.monotonic() - began
    assert stop.stdout.decode().split() == given and stop.stderr == b""
    assert 2 <= took < 30  # plain (pid 1 has no TERM handler) and stubborn wait out -t
    got = statuses(drl)
    assert re.fullmatch(r"Exited \(7\) .* ago", got["graceful"]), got
    assert re.fullmatch(r"Exited \(137\) .* ago", got["plain"]), got
    assert re.fullmatch(r"Exited \(137\) .* ago", got["stubborn"]), got
    assert sorted(drl.out("ps", "-a", "-q", "-f", "status=exited").split()) == sorted(given)

    started = drl("start", "graceful", plain[:12], "stubborn")
    assert started.stdout.decode().split() == ["graceful", plain[:12], "stubborn"]
    assert all(s.startswith("Up ") for s in statuses(drl).values()), statuses(drl)

    assert drl.out("kill", "stubborn") == "stubborn\n"
    assert settled(lambda: status(drl, "stubborn"), until=lambda s: s.startswith("Exited")).startswith("Exited (137)")
    assert record(drl, stubborn)["exit_code"] == 137
    assert drl.out("wait", "stubborn") == "137\n"

    exited = drl.out("ps", "-a", "-q", "-f", "status=exited").split()
    assert exited == [stubborn[:12]]
    assert drl.out("rm", "-f", *exited).split() == exited
    assert sorted(statuses(drl)) == ["graceful", "plain"]
    assert drl.out("rm", "-f", "graceful", "plain").split() == ["graceful", "plain"]
    assert drl.out("ps", "-a", "-q") == ""
    gone(drl, graceful, namespaces)


def test_logs_follow_and_run_rm_d(drl, driver):
    cid = run_d(drl, "--storage-driver", driver, "busybox", "sh", "-c",
                "for i in 1 2 3 4 5 6; do echo line$i; sleep 0.4; done")
    follow = drl.popen("logs", "-f", cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert lines_until(follow, "line2") == ["line1", "line2"]
        assert record(drl, cid)["status"] == "running"  # the lines came while it ran
        assert follow.wait(timeout=30) == 0  # and logs -f ended when it stopped
        assert follow.stdout.read().decode().split() == ["line%d" % i for i in range(3, 7)]
    finally:
        follow.kill()
        follow.wait()
    assert drl.out("ps", "-a", "--format", "{{.Status}}").startswith("Exited (0)")
    drl("rm", cid)

    removed = run_d(drl, "--storage-driver", driver, "--rm", "busybox", "sh", "-c", "sleep 0.5")
    assert removed[:12] in drl.out("ps", "-q").split()  # it ran detached
    assert settled(lambda: drl.out("ps", "-a", "-q")) == ""
    assert not os.path.exists(os.path.join(drl.root, "containers", removed))


def test_restart_keeps_a_rm_container_and_its_layer(drl, driver):
    """``restart`` of a ``--rm`` container starts it again, as dockerd's manual restart
    (HasBeenManuallyRestarted): the exit it causes does not remove it, its writable layer
    is mounted again (for overlay, a volatile one: its mark cleared), and the exit after
    that removes it."""
    cid = run_d(drl, "--storage-driver", driver, "--rm", "busybox", "sh", "-c",
                "echo run >> /count; exec sleep 100")
    def count():
        return drl.out("exec", cid, "sh", "-c", "cat /count 2>/dev/null; true")
    assert settled(count, until=lambda v: v) == "run\n"
    assert drl.out("restart", "-t", "1", cid).strip() == cid
    assert record(drl, cid)["status"] == "running"
    assert settled(count, until=lambda v: v.count("run") == 2) == "run\nrun\n"
    drl("stop", "-t", "1", cid)
    assert settled(lambda: drl.out("ps", "-a", "-q")) == ""
    assert not os.path.exists(os.path.join(drl.root, "containers", cid))


# -- 2. the end of the login session ------------------------------------------------------------

def session_members(sid: int) -> list:
    found = []
    for pid in my_pids():
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                if int(f.read().rsplit(b")", 1)[1].split()[3]) == sid:
                    found.append(pid)
        except OSError:
            pass
    return found


def test_a_container_survives_the_end_of_its_login_session(drl, tmp_path):
    cidfile = tmp_path / "cid"
    command = " ".join("'%s'" % a for a in drl.base)
    script = "%s run -d busybox sh -c '%s' > %s; exec sleep 1000" % (command, TICKER, cidfile)
    login = subprocess.Popen(["bash", "-c", script], env=drl.env(), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert settled(lambda: HEX64.fullmatch(cidfile.read_text().strip()) if cidfile.exists() else None,
                       timeout=30, until=bool)
        cid = cidfile.read_text().strip()
        monitor = record(drl, cid)["monitor"]["pid"]
        assert os.getsid(monitor) != login.pid  # the monitor left the session it was started from
        for sig in (signal.SIGHUP, signal.SIGKILL):
            os.killpg(login.pid, sig)
            for pid in session_members(login.pid):
                kill(pid, sig)
    finally:
        login.kill()
        login.wait()
    assert settled(lambda: [p for p in session_members(login.pid) if state(p)]) == []
    before = len(logged(drl, cid))
    assert settled(lambda: len(logged(drl, cid)), until=lambda n: n > before + 3) > before + 3
    assert status(drl, cid).startswith("Up ")
    drl("rm", "-f", cid)
    assert drl.out("ps", "-a", "-q") == ""


# -- 3, 4. kill -9 of the monitor, of the container's first process -----------------------------

def test_kill_9_of_the_monitor(drl, driver):
    cid = run_d(drl, "--storage-driver", driver, "busybox", "sh", "-c", PRINT_NAMESPACES + "; exec sleep 1000")
    namespaces = namespaces_of(drl, cid)
    rec = record(drl, cid)
    monitor = rec["monitor"]["pid"]
    assert parent(rec["pid"]) == monitor and monitor in monitors(drl)
    os.kill(monitor, signal.SIGKILL)
    assert settled(lambda: state(monitor)) == ""  # the kernel has ended it
    assert status(drl, cid).startswith("Exited (137) ")  # at once: no wait around ps
    assert drl.out("rm", "-f", cid) == cid + "\n"
    gone(drl, cid, namespaces)

    again = run_d(drl, "--storage-driver", driver, "busybox", "sh", "-c", "echo again; exec sleep 1000")
    assert record(drl, again)["monitor"]["pid"] in monitors(drl) and monitor not in monitors(drl)
    assert status(drl, again).startswith("Up ")
    assert settled(lambda: logged(drl, again), until=bool) == ["again"]
    drl("rm", "-f", again)


def test_kill_9_of_the_first_process(drl):
    cid = run_d(drl, "busybox", "sleep", "1000")
    os.kill(record(drl, cid)["pid"], signal.SIGKILL)
    assert drl.out("wait", cid) == "137\n"
    assert status(drl, cid).startswith("Exited (137) ")
    drl("rm", cid)


# -- 5. many containers from parallel shells ----------------------------------------------------

SHELL = r"""
rl() { %(rl)s "$@"; }
check() { if [ "$2" = "$3" ]; then echo "ok $1"; else echo "bad $1: expected $2, got $3"; fi; }
running=""
for n in %(numbers)s; do
  code=$((n %% 100 + 1))
  case $((n %% 3)) in
    0) cid=$(rl run -d busybox sh -c 'sleep 30') || echo "bad $n: run -d"
       running="$running $n:$cid" ;;
    1) rl run --name fg$n busybox sh -c "exit $code" >/dev/null 2>&1; check $n $code $?
       rl rm fg$n >/dev/null || echo "bad $n: rm" ;;
    2) cid=$(rl run -d busybox sh -c "exit $code")
       check $n $code "$(rl wait $cid)"
       rl rm $cid >/dev/null || echo "bad $n: rm" ;;
  esac
done
for entry in $running; do
  n=${entry%%:*}; cid=${entry#*:}
  out=$(rl stop -t 1 $cid); check "$n-stop" $cid "$out"
  check $n 137 "$(rl wait $cid)"
  rl rm $cid >/dev/null || echo "bad $n: rm"
done
"""


def test_fifty_containers_from_four_shells(drl):
    command = " ".join("'%s'" % a for a in drl.base)
    shells = []
    for k in range(4):
        numbers = " ".join(str(n) for n in range(50) if n % 4 == k)
        shells.append(subprocess.Popen(["bash", "-c", SHELL % {"rl": command, "numbers": numbers}],
                                       env=drl.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = [s.communicate(timeout=600) for s in shells]
    lines = [l for out, _ in outputs for l in out.decode().splitlines()]
    assert [l for l in lines if not l.startswith("ok ")] == [], [err.decode()[-3000:] for _, err in outputs]
    # One "ok" per container, and one more per stopped container for what stop printed.
    assert sorted(l.split()[1] for l in lines if "-" not in l) == sorted(str(n) for n in range(50))
    assert len([l for l in lines if "-stop" in l]) == len([n for n in range(50) if n % 3 == 0])
    assert os.listdir(os.path.join(drl.root, "containers")) == []
    assert os.listdir(os.path.join(drl.root, "tmp")) == []
    assert settled(lambda: monitors(drl), timeout=5) == []
    strays = [p for p in my_pids() if state(p) and ("sleep 30" in cmdline(p) or drl.root in cmdline(p))]
    assert strays == [], {p: cmdline(p) for p in strays}


# -- 6. the item-9 bugs -------------------------------------------------------------------------

def foreground(drl, name: str):
    proc = drl.popen("run", "--name", name, "busybox", "sleep", "100",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert settled(lambda: status(drl, name), until=lambda s: s.startswith("Up ")), proc.stderr
    return proc


def test_rm_f_of_a_foreground_run_ends_it_with_137(drl):
    proc = foreground(drl, "fg")
    rm = drl("rm", "-f", "fg")
    assert rm.stdout == b"fg\n" and rm.stderr == b""
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 137, err
    assert b"Traceback" not in err and b"error" not in err and b"No such file" not in err, err
    assert drl.out("ps", "-a", "-q") == ""


def test_kill_9_of_a_foreground_run_shows_exited_137(drl):
    proc = foreground(drl, "fg9")
    proc.kill()
    proc.communicate(timeout=30)
    shown = status(drl, "fg9")
    assert shown.startswith("Exited (137) ") and "None" not in shown, shown
    assert drl.out("wait", "fg9") == "137\n"
    drl("rm", "fg9")


def test_start_detaches_unless_attached(drl):
    drl("create", "--name", "twice", "busybox", "sh", "-c", "sleep 1; exit 5")
    began = time.monotonic()
    assert drl.out("start", "twice") == "twice\n"
    assert time.monotonic() - began < 1 and status(drl, "twice").startswith("Up ")
    assert drl.out("wait", "twice") == "5\n"
    began = time.monotonic()
    attached = drl("start", "-a", "twice", check=False)
    assert attached.returncode == 5 and time.monotonic() - began >= 1
    assert attached.stdout == b"" and status(drl, "twice").startswith("Exited (5) ")
    drl("rm", "twice")


def test_run_d_of_a_missing_command(drl):
    proc = drl("run", "-d", "--name", "missing", "busybox", "nosuchcmd", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 127 and err.count("\n") == 1 and "nosuchcmd" in err, err
    assert err == 'rootless: error: exec: "nosuchcmd": executable file not found in $PATH\n'
    assert status(drl, "missing") == "Created"
    drl("rm", "missing")


def test_unknown_names(drl):
    # Docker's client prints "Error response from daemon: No such container: NAME" and exits 1
    # (docker/cli: every verb but run exits 1 on a daemon error); rootless keeps its 125 for
    # any runner error, as errors.py and the other verbs' tests have it. Like Docker, the
    # other containers named are still acted on.
    run_d(drl, "--name", "real", "busybox", "sleep", "1000")
    for verb in ("stop", "kill", "rm"):
        proc = drl(verb, "nosuch", check=False)
        assert proc.returncode == 125 and proc.stdout == b""
        assert proc.stderr == b"rootless: error: No such container: nosuch\n", proc.stderr
    proc = drl("stop", "-t", "0", "nosuch", "real", check=False)
    assert proc.returncode == 125 and proc.stdout == b"real\n" and b"No such container: nosuch" in proc.stderr
    assert status(drl, "real").startswith("Exited (137) ")
    drl("rm", "real")
