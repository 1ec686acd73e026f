"""Detached containers over time: restart policies, log rotation, ``logs`` on a live
container, and a full disk, run as the unprivileged test users.

Every wait is a poll with a deadline (``until``), never a fixed sleep, except where the
test must show that something does NOT happen (no more runs after a stop): there it
watches for a while longer than the restart backoff.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import Rootless, loaded_root, need

SMALL = "/var/tmp/rootless-small"  # a 24 MiB tmpfs that .ci/run mounts for the users


@pytest.fixture(scope="module")
def drl(tmp_path_factory, test_images):
    """One storage root for the module, with busybox loaded."""
    yield from loaded_root(tmp_path_factory, test_images, "detlogs")


@pytest.fixture(autouse=True)
def no_container_outlives_its_test(request):
    yield
    if "drl" in request.fixturenames:  # (the small root's fixture cleans up after itself)
        crl = request.getfixturevalue("drl")
        for cid in crl.out("ps", "-a", "-q", "--no-trunc", check=False).split():
            crl("rm", "-f", cid, check=False)


def until(what, check, timeout=30.0, every=0.02):
    """Poll ``check`` until it returns something true; that value, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, value))
        time.sleep(every)


def record(crl, cid) -> dict:
    with open(os.path.join(crl.root, "containers", cid, "container.json")) as f:
        return json.load(f)


def run_d(crl, *args) -> str:
    """``run -d``; the full id."""
    return crl.out("run", "-d", *args).strip()


def logs(crl, cid, *flags) -> str:
    return crl.out("logs", *flags, cid)


def runs(crl, cid) -> list:
    """When each run started: the log time of the ``run`` line each run prints first."""
    import calendar
    times = []
    for line in logs(crl, cid, "-t").splitlines():
        stamp, _, text = line.partition(" ")
        if text == "run":
            whole, frac = stamp.rstrip("Z").split(".")
            times.append(calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + frac))
    return times


def exited(crl, cid):
    r = record(crl, cid)
    return r if r["status"] == "exited" else None


# Each run prints "run" so that runs can be counted and their spacing measured.
STAMP = "echo run; "


# -- restart policies ----------------------------------------------------------------

def test_on_failure_2_restarts_exactly_twice_with_backoff(drl):
    cid = run_d(drl, "--restart", "on-failure:2", "busybox", "sh", "-c", STAMP + "exit 3")
    r = until("the container to give up", lambda: exited(drl, cid))
    assert r["exit_code"] == 3
    assert r["restart_count"] == 2
    times = runs(drl, cid)
    assert len(times) == 3, logs(drl, cid)
    # Docker's backoff: 100 ms, then 200 ms. Not a tight loop.
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[1] > gaps[0], gaps
    out = drl.out("ps", "-a", "--filter", "id=" + cid, "--format", "{{.Status}}")
    assert out.startswith("Exited (3)"), out


def test_on_failure_does_not_restart_a_success(drl):
    cid = run_d(drl, "--restart", "on-failure", "busybox", "sh", "-c", STAMP + "exit 0")
    until("the exit", lambda: exited(drl, cid))
    time.sleep(0.5)  # longer than the first backoff: a restart would have happened
    r = record(drl, cid)
    assert (r["status"], r["exit_code"], r["restart_count"]) == ("exited", 0, 0)
    assert len(runs(drl, cid)) == 1


def test_always_restarts_a_success(drl):
    cid = run_d(drl, "--restart", "always", "busybox", "sh", "-c", STAMP + "exit 0")
    until("three runs", lambda: len(runs(drl, cid)) >= 3, timeout=30)
    assert record(drl, cid)["restart_count"] >= 2


def ends_for_good(drl, cid, how):
    """``how`` (stop, kill) ends an always-restarting container: it stays exited."""
    drl(*how, cid)
    r = until("the container to be exited", lambda: exited(drl, cid), timeout=20)
    seen = len(runs(drl, cid))
    time.sleep(1.5)  # past several backoff steps: a restart would show
    assert exited(drl, cid), record(drl, cid)
    assert len(runs(drl, cid)) == seen
    return r


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_stop_ends_a_restarting_container_for_good(drl, policy):
    cid = run_d(drl, "--restart", policy, "busybox", "sh", "-c", STAMP + "sleep 1000")
    until("the first run", lambda: runs(drl, cid))
    r = ends_for_good(drl, cid, ["stop", "-t", "1"])
    assert r["stopped_by_user"] is True
    # A later start brings the policy back, as Docker's.
    drl("start", cid)
    until("a second run", lambda: len(runs(drl, cid)) == 2)
    assert record(drl, cid)["stopped_by_user"] is False


@pytest.mark.parametrize("policy", ["always", "unless-stopped", "on-failure"])
def test_kill_counts_as_stopped_by_the_user(drl, policy):
    """dockerd's killWithSignal marks the container manually stopped and cancels its
    restart manager (ExitOnNext) for SIGKILL or any signal when no stop signal is set."""
    cid = run_d(drl, "--restart", policy, "busybox", "sh", "-c", STAMP + "sleep 1000")
    until("the first run", lambda: runs(drl, cid))
    ends_for_good(drl, cid, ["kill"])
    assert record(drl, cid)["exit_code"] == 137


def test_kill_of_a_container_between_runs_ends_it(drl):
    cid = run_d(drl, "--restart", "always", "busybox", "sh", "-c", STAMP + "exit 5")
    until("a restart", lambda: record(drl, cid)["restart_count"] >= 3)
    until("the kill to be taken", lambda: drl("kill", cid, check=False).returncode == 0)
    r = until("the container to be exited", lambda: exited(drl, cid), timeout=60)
    assert r["exit_code"] == 5  # the last run's code, not a runner error
    seen = len(runs(drl, cid))
    time.sleep(2)
    assert len(runs(drl, cid)) == seen


def test_stop_between_runs_does_not_wait_out_the_backoff(drl):
    """A container that keeps failing waits ever longer between runs (1.6 s after five);
    stop ends it at once rather than waiting for the next run, and no run follows."""
    cid = run_d(drl, "--restart", "always", "busybox", "sh", "-c", STAMP + "exit 5")
    until("five restarts", lambda: record(drl, cid)["restart_count"] >= 5, timeout=60)
    until("a wait between two runs", lambda: record(drl, cid)["status"] == "restarting")
    began = time.monotonic()
    drl("stop", "-t", "1", cid)
    assert time.monotonic() - began < 1.5
    r = record(drl, cid)
    assert r["status"] == "exited" and r["exit_code"] == 5
    seen = len(runs(drl, cid))
    time.sleep(4)  # longer than the backoff that was due
    assert len(runs(drl, cid)) == seen and record(drl, cid)["status"] == "exited"
    drl("start", cid)  # and its user can start it again
    until("a new run", lambda: len(runs(drl, cid)) > seen)


def test_kill_with_another_signal_than_the_stop_signal(drl):
    """With a configured stop signal, another signal does not cancel the policy: always
    restarts, unless-stopped does not (HasBeenManuallyStopped only)."""
    script = STAMP + "trap 'exit 7' HUP; while :; do sleep 0.05; done"
    always = run_d(drl, "--stop-signal", "USR1", "--restart", "always", "busybox", "sh", "-c", script)
    unless = run_d(drl, "--stop-signal", "USR1", "--restart", "unless-stopped", "busybox", "sh", "-c", script)
    for cid in (always, unless):
        until("the first run", lambda: runs(drl, cid))
        drl("kill", "-s", "HUP", cid)
    until("always to run again", lambda: len(runs(drl, always)) >= 2)
    r = until("unless-stopped to stay exited", lambda: exited(drl, unless))
    assert r["exit_code"] == 7
    time.sleep(1)
    assert len(runs(drl, unless)) == 1


def test_restart_with_rm_is_refused(drl):
    for verb in ("run", "create"):
        p = drl(verb, "--rm", "--restart", "always", "busybox", "true", check=False)
        assert p.returncode == 125
        assert b"conflicting options: cannot specify both --restart and --rm" in p.stderr
    assert drl.out("ps", "-a", "-q") == ""


@pytest.mark.parametrize("policy, message", [
    ("sometimes", "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', "
                  "'on-failure', or 'unless-stopped'"),
    ("always:3", "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
    ("on-failure:x", "invalid restart policy format: maximum retry count must be an integer"),
])
def test_bad_policy_is_refused(drl, policy, message):
    p = drl("run", "-d", "--restart", policy, "busybox", "true", check=False)
    assert p.returncode == 125
    assert message.encode() in p.stderr, p.stderr
    assert drl.out("ps", "-a", "-q") == ""


# -- log rotation and logs ------------------------------------------------------------

def test_rotation_keeps_max_file_files_of_max_size(drl):
    cid = run_d(drl, "--log-opt", "max-size=2k", "--log-opt", "max-file=3", "busybox", "sh", "-c",
                "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done")
    until("the exit", lambda: exited(drl, cid))
    cdir = os.path.join(drl.root, "containers", cid)
    logs_there = sorted(n for n in os.listdir(cdir) if "-json.log" in n)
    assert logs_there == [cid + "-json.log", cid + "-json.log.1", cid + "-json.log.2"]
    for name in logs_there:
        size = os.path.getsize(os.path.join(cdir, name))
        assert size <= 2048 + 200, (name, size)  # one entry past max-size at most
    shown = logs(drl, cid).splitlines()
    numbers = [int(line.split("-")[1]) for line in shown]
    assert numbers == list(range(numbers[0], 400))  # the newest lines, in order
    assert 20 < len(numbers) < 400


def test_log_driver_none(drl):
    cid = run_d(drl, "--log-driver", "none", "busybox", "echo", "hello")
    until("the exit", lambda: exited(drl, cid))
    cdir = os.path.join(drl.root, "containers", cid)
    assert not [n for n in os.listdir(cdir) if "json.log" in n]
    p = drl("logs", cid, check=False)
    assert p.returncode != 0
    assert b"configured logging driver does not support reading" in p.stderr


def test_logs_flags_on_a_live_container(drl):
    cid = run_d(drl, "busybox", "sh", "-c", "echo one; echo two; echo three; sleep 1.2; "
                "echo four; sleep 1000")
    until("three lines", lambda: logs(drl, cid).count("\n") >= 3)
    assert logs(drl, cid, "--tail", "2") == "two\nthree\n"
    stamped = logs(drl, cid, "-t").splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (one|two|three|four)$", line)
               for line in stamped), stamped
    until("four", lambda: "four" in logs(drl, cid))
    # --since the time of "four" minus a bit: only the line after the pause.
    four_time = [line.split()[0] for line in logs(drl, cid, "-t").splitlines() if line.endswith("four")][0]
    assert logs(drl, cid, "--since", four_time) == "four\n"
    assert logs(drl, cid, "--since", "1h") == "one\ntwo\nthree\nfour\n"
    # -f: shows what is there, keeps following, ends when the container does.
    follow = drl.popen("logs", "-f", cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        assert follow.poll() is None, "logs -f ended while the container runs"
        drl("kill", "-s", "KILL", cid)
        out, _ = follow.communicate(timeout=20)
    finally:
        if follow.poll() is None:
            follow.kill()
    assert out == b"one\ntwo\nthree\nfour\n"
    assert follow.returncode == 0


def test_logs_follow_sees_new_lines(drl):
    cid = run_d(drl, "busybox", "sh", "-c", "i=0; while [ $i -lt 30 ]; do echo n$i; i=$((i+1)); "
                "sleep 0.1; done")
    follow = drl.popen("logs", "-f", cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = follow.communicate(timeout=60)
    assert out.decode().split() == ["n%d" % i for i in range(30)], err


# -- a full disk ----------------------------------------------------------------------

@pytest.fixture
def small(test_images):
    """A storage root on the small tmpfs, busybox loaded; removed afterwards."""
    need(os.getuid() != 0, "containers must be run as an unprivileged user")
    need(os.path.ismount(SMALL) and os.access(SMALL, os.W_OK),
         "a small tmpfs the test users can write at %s (bash .ci/run mounts it)" % SMALL)
    free = os.statvfs(SMALL).f_bavail * os.statvfs(SMALL).f_frsize
    assert free > 20 * 1024 * 1024, "the small tmpfs %s has only %d KiB free: %s left there by " \
        "an earlier run (bash .ci/run mounts it afresh)" % (SMALL, free // 1024, os.listdir(SMALL))
    top = os.path.join(SMALL, "%s-%s" % (os.getuid(), uuid.uuid4().hex[:8]))
    crl = Rootless(os.path.join(top, "root"))
    crl("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    yield crl
    for cid in crl.out("ps", "-a", "-q", check=False).split():
        crl("rm", "-f", cid, check=False)
    crl("system", "reset", "--force", check=False)
    shutil.rmtree(top, ignore_errors=True)
    if os.path.exists(top):
        subprocess.run(["chmod", "-R", "u+rwX", top])
        shutil.rmtree(top, ignore_errors=True)


def all_records_parse(crl):
    top = os.path.join(crl.root, "containers")
    for name in os.listdir(top):
        path = os.path.join(top, name, "container.json")
        if os.path.exists(path):
            with open(path) as f:
                assert isinstance(json.load(f), dict), path


FILL = "dd if=/dev/zero of=/fill bs=64k 2>/dev/null; "


def test_a_full_disk_in_the_foreground(small):
    keep = small.out("create", "busybox", "true").strip()  # an idle one to list and remove
    p = small("run", "--name", "filler", "busybox", "sh", "-c", FILL + "exit 4", check=False)
    assert p.returncode == 4, p.stderr
    assert os.statvfs(SMALL).f_bavail * os.statvfs(SMALL).f_frsize < 256 * 1024  # still full
    listed = small.out("ps", "-a", "--format", "{{.Names}} {{.Status}}")
    assert re.search(r"^filler Exited \(4\)", listed, re.M), listed
    all_records_parse(small)
    p = small("rm", keep, check=False)
    assert p.returncode == 0, p.stderr
    p = small("rm", "-f", "filler", check=False)
    assert p.returncode == 0, p.stderr
    small("create", "--name", "again", "busybox", "true", check=False)  # may fail: disk full
    p = small("system", "reset", "-f", check=False)
    assert p.returncode == 0, p.stderr
    assert not os.path.exists(os.path.join(small.root, "containers")) or \
        not os.listdir(os.path.join(small.root, "containers"))


def test_an_error_on_the_full_disk_names_the_path(small):
    """Writing a record on a full disk fails with a message that names the path."""
    hog = os.path.join(os.path.dirname(small.root), "hog")
    fill(hog)
    try:
        p = small("create", "busybox", "true", check=False)
        assert p.returncode == 125
        assert b"No space left on device: " + small.root.encode() in p.stderr, p.stderr
        assert small.out("ps", "-a", "-q") == ""  # nothing half-made is listed
    finally:
        os.unlink(hog)


def fill(path):
    """Write ``path`` until the file system is full."""
    with open(path, "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_detached_container_logging_on_a_full_disk(small):
    # Signals (sent from the host, as no record need be written for them) pace it.
    cid = run_d(small, "busybox", "sh", "-c",
                "trap 'go=1' USR1; trap 'again=1' USR2; echo before; "
                "while [ -z \"$go\" ]; do sleep 0.05; done; "
                "i=0; while [ $i -lt 200 ]; do echo lost-$i; i=$((i+1)); done; "
                "while [ -z \"$again\" ]; do sleep 0.05; done; echo after; sleep 1000")
    until("before", lambda: "before" in logs(small, cid))
    pid = record(small, cid)["pid"]
    hog = os.path.join(os.path.dirname(small.root), "hog")
    fill(hog)
    try:
        os.kill(pid, signal.SIGUSR1)
        until("the loss to be reported",
              lambda: "lines lost" in small("logs", cid).stderr.decode(), timeout=30)
        time.sleep(0.5)  # let it finish its 200 lines
        p = small("logs", cid)
        assert p.returncode == 0
        warning = p.stderr.decode().strip().splitlines()
        assert len(warning) == 1, warning
        assert re.match(r"rootless: warning: container \S+: cannot write the log \S+%s-json\.log: "
                        r"No space left on device; \d+ lines lost$" % cid, warning[0]), warning
        lost = int(warning[0].split("; ")[1].split()[0])
        shown = p.stdout.decode().splitlines()
        assert shown[0] == "before" and lost + len(shown) - 1 == 200, (lost, shown[-3:])
        r = record(small, cid)
        assert r["status"] == "running" and r["pid"] == pid
        all_records_parse(small)
        assert small("ps", "-a").returncode == 0
    finally:
        os.unlink(hog)
    os.kill(pid, signal.SIGUSR2)
    until("logging to resume", lambda: "after" in logs(small, cid))
    out = logs(small, cid).splitlines()
    assert out[0] == "before" and out[-1] == "after"
