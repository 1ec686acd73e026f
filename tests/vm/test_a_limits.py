"""Configuration a of scripts/testbed: cgroup v2 with delegation (Debian bookworm, systemd,
the test user lingering, so its user manager runs and delegates cpu memory pids). Every
limit for real, through both strategies: ``systemd`` (this runner's own cgroup is the
testbed's system service, not ours: a delegated scope per container) and ``cgroupfs``
(the CLI started inside a delegated scope of its own)."""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import loaded_root, until

CGROUP = "/sys/fs/cgroup"


@pytest.fixture(scope="module")
def vrl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "limits")


def ours() -> list:
    """Every cgroup directory rootless made (rootless-ID...), anywhere in the tree, once
    systemd has removed the emptied scopes (it does so a moment after their end)."""
    def found():
        names = []
        for root, dirs, _ in os.walk(CGROUP):
            names += [os.path.join(root, d) for d in dirs if re.match(r"rootless-[0-9a-f]{12}", d)]
        return names
    deadline = time.monotonic() + 10
    while found() and time.monotonic() < deadline:
        time.sleep(0.1)
    return found()


def record(vrl, cid: str) -> dict:
    with open(os.path.join(vrl.root, "containers", cid, "container.json")) as f:
        return json.load(f)


def inspect(vrl, cid: str, template: str) -> str:
    return vrl.out("inspect", "--format", template, cid).strip()


def cpu_usage(path: str) -> int:
    with open(os.path.join(path, "cpu.stat")) as f:
        return int(dict(line.split() for line in f)["usage_usec"])


def test_info_finds_the_user_managers_tree(vrl):
    info = json.loads(vrl.out("info", "--format", "{{json .}}"))
    assert info["CgroupVersion"] == "2" and info["CgroupDriver"] == "systemd", info["Cgroups"]
    assert {"cpu", "memory", "pids"} <= set(info["Cgroups"]["Controllers"])
    assert info["MemoryLimit"] and info["PidsLimit"] and info["CPUShares"]


def test_memory_limit_oom_kills_the_hog(vrl):
    cid = vrl.out("create", "--memory", "50m", "busybox", "sh", "-c",
                  "cat /sys/fs/cgroup/memory.max && "
                  "dd if=/dev/zero of=/dev/null bs=200M count=1").strip()
    proc = vrl("start", "-a", cid, check=False)
    assert proc.returncode == 137, proc.stderr
    assert proc.stdout.decode().split()[0] == str(50 * 1024 * 1024)  # its own cgroup, as its root
    assert inspect(vrl, cid, "{{.State.OOMKilled}} {{.State.ExitCode}} {{.HostConfig.Memory}}") == \
        "true 137 %d" % (50 * 1024 * 1024)
    vrl("rm", cid)
    assert ours() == []


def test_pids_limit_stops_a_fork_bomb(vrl):
    # The bomb runs in a subshell (which ends at the first refused fork); pid 1 execs a
    # sleep, which needs no fork, so the container outlives the bomb and its children.
    cid = vrl.out("run", "-d", "--pids-limit", "10", "busybox", "sh", "-c",
                  "(while :; do sleep 100 & done) 2>/dev/null & exec sleep 100").strip()
    path = record(vrl, cid)["cgroup"]

    def read(name):
        with open(os.path.join(path, name)) as f:
            return f.read()
    refused = until(lambda: int(dict(line.split() for line in read("pids.events").splitlines())["max"]),
                    timeout=30, what="a fork refused at the limit")
    assert refused > 0  # forks were refused at the limit
    assert int(read("pids.current")) <= 10 and read("pids.max").strip() == "10"
    vrl("rm", "-f", cid)
    assert ours() == []


def test_cpus_hold_a_busy_loop_near_the_quota(vrl):
    cid = vrl.out("run", "-d", "--cpus", "0.2", "busybox", "sh", "-c", "while :; do :; done").strip()
    path = record(vrl, cid)["cgroup"]
    assert path and path.startswith(CGROUP) and os.path.isdir(path)
    with open(os.path.join(path, "cpu.max")) as f:
        assert f.read().split() == ["20000", "100000"]
    time.sleep(1)
    before, began = cpu_usage(path), time.monotonic()
    time.sleep(5)
    share = (cpu_usage(path) - before) / 1e6 / (time.monotonic() - began)
    assert 0.1 <= share <= 0.3, share
    vrl("rm", "-f", cid)
    assert not os.path.exists(path)
    assert ours() == []


def test_each_limit_reaches_its_file(vrl):
    cid = vrl.out("run", "-d", "--memory", "64m", "--memory-reservation", "32m", "--memory-swap", "96m",
                  "--cpu-shares", "512", "--pids-limit", "50", "busybox", "sleep", "100").strip()
    path = record(vrl, cid)["cgroup"]

    def read(name):
        with open(os.path.join(path, name)) as f:
            return f.read().strip()
    assert read("memory.max") == str(64 * 2 ** 20) and read("memory.low") == str(32 * 2 ** 20)
    assert read("memory.swap.max") == str(32 * 2 ** 20)  # Docker's figure is memory + swap
    assert read("cpu.weight") == "20" and read("pids.max") == "50"
    pid = int(inspect(vrl, cid, "{{.State.Pid}}"))
    with open("/proc/%d/cgroup" % pid) as f:
        assert f.read().strip() == "0::" + path[len(CGROUP):]
    top = vrl.out("top", cid, "-o", "pid").split()  # from the cgroup's cgroup.procs
    with open(os.path.join(path, "cgroup.procs")) as f:
        assert top[0] == "PID" and sorted(top[1:]) == sorted(f.read().split())
    assert inspect(vrl, cid, "{{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}}") == "50 512"
    vrl("rm", "-f", cid)
    assert ours() == []


def test_exec_runs_inside_the_limits(vrl):
    """An exec'd process joins the container's cgroup (the user manager moves it: the
    runner's own cgroup is a system service's) and counts against its limits."""
    cid = vrl.out("run", "-d", "--memory", "50m", "busybox", "sleep", "100").strip()
    assert vrl.out("exec", cid, "cat", "/proc/self/cgroup") == "0::/\n"
    hog = vrl("exec", cid, "dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1", check=False)
    assert hog.returncode == 137, hog.stderr
    assert inspect(vrl, cid, "{{.State.Running}}") == "true"  # the hog died, not the container
    vrl("rm", "-f", cid)
    assert ours() == []


def test_pause_freezes_through_the_cgroup(vrl):
    cid = vrl.out("run", "-d", "--pids-limit", "100", "busybox", "sh", "-c",
                  "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done").strip()
    path = record(vrl, cid)["cgroup"]
    paused = vrl("pause", cid)
    assert paused.stdout.decode() == cid + "\n" and paused.stderr == b""  # no notice: the freezer
    with open(os.path.join(path, "cgroup.events")) as f:
        assert "frozen 1" in f.read().splitlines()
    assert inspect(vrl, cid, "{{.State.Status}}") == "paused"

    def ticks():
        return int(vrl.out("logs", cid).split()[-1])
    before = ticks()
    time.sleep(1)
    assert ticks() == before
    vrl("unpause", cid)
    with open(os.path.join(path, "cgroup.events")) as f:
        assert "frozen 0" in f.read().splitlines()
    time.sleep(1)
    assert ticks() > before
    vrl("pause", cid)
    vrl("stop", "-t", "1", cid)  # thawed for its stop signal; killed after the timeout
    assert inspect(vrl, cid, "{{.State.Status}}") == "exited"
    vrl("rm", cid)
    assert ours() == []


def test_stats_reads_the_cgroup(vrl):
    cid = vrl.out("run", "-d", "--memory", "200m", "--pids-limit", "50", "busybox", "sh", "-c",
                  "dd if=/dev/zero of=/dev/shm/fill bs=1M count=30 2>/dev/null; sleep 1000 & exec sleep 1000").strip()
    path = record(vrl, cid)["cgroup"]
    until(lambda: int(vrl.out("exec", cid, "sh", "-c", "wc -c < /dev/shm/fill 2>/dev/null || echo 0")) == 30 * 2 ** 20,
          timeout=30, what="30 MiB in the container's /dev/shm")
    row = json.loads(vrl.out("stats", "--no-stream", "--format", "json", cid))

    def read(name):
        with open(os.path.join(path, name)) as f:
            return f.read()
    usage, limit = row["MemUsage"].split(" / ")
    assert limit == "200MiB"
    mib = float(usage[:-3]) if usage.endswith("MiB") else 0
    stat = dict(line.split() for line in read("memory.stat").splitlines())
    expected = (int(read("memory.current")) - int(stat["inactive_file"])) / 2 ** 20
    assert mib > 20 and abs(mib - expected) < 5, (usage, expected)
    assert row["PIDs"] == read("pids.current").strip() == "2"
    assert float(row["MemPerc"][:-1]) == pytest.approx(mib / 2, abs=3)
    vrl("rm", "-f", cid)
    assert ours() == []


def test_update_changes_a_running_containers_limits(vrl):
    cid = vrl.out("run", "-d", "--memory", "100m", "busybox", "sleep", "1000").strip()
    path = record(vrl, cid)["cgroup"]

    def read(name):
        with open(os.path.join(path, name)) as f:
            return f.read().strip()
    assert vrl.out("update", "--memory", "40m", "--memory-swap", "80m", "--pids-limit", "20", cid) == cid + "\n"
    assert read("memory.max") == str(40 * 2 ** 20) and read("memory.swap.max") == str(40 * 2 ** 20)
    assert read("pids.max") == "20"
    assert inspect(vrl, cid, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}") == "%d 20" % (40 * 2 ** 20)
    hog = vrl("exec", cid, "dd", "if=/dev/zero", "of=/dev/null", "bs=60M", "count=1", check=False)
    assert hog.returncode == 137, hog.stderr  # 60 MB fitted before, not now
    vrl("rm", "-f", cid)
    assert ours() == []


def test_a_delegated_cgroup_of_its_own_is_used_directly(vrl):
    """cgroupfs: the CLI runs in a delegated scope (its own cgroup is ours); the scope's
    processes move into a leaf so that it can hand controllers down."""
    env = dict(os.environ, XDG_RUNTIME_DIR="/run/user/%d" % os.getuid())
    cmd = ["systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes", "--"] + vrl.base + \
        ["run", "--rm", "--memory", "40m", "busybox", "sh", "-c", "cat /proc/self/cgroup; "
         "cat /sys/fs/cgroup/memory.max"]
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split() == ["0::/", str(40 * 2 ** 20)]
    info = subprocess.run(["systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes", "--"] + vrl.base +
                          ["info", "--format", "{{.CgroupDriver}}"], capture_output=True, env=env, timeout=60)
    assert info.stdout.decode().strip() == "cgroupfs", info.stderr
    assert ours() == []


def test_no_cgroup_is_left(vrl):
    assert vrl.out("ps", "-a", "-q") == ""
    assert ours() == []
