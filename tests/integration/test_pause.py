"""``pause``/``unpause`` on this machine, where no container has a cgroup of its own: every
process of the container is stopped (SIGSTOP) and continued, with the notice that says
why; Docker's refusals and exit codes; a paused container can still be stopped. (With a
cgroup, through cgroup.freeze: tests/vm.)"""

import os
import time

import pytest

from conftest import loaded_root


@pytest.fixture(scope="module")
def prl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "pause")


def states(prl, cid: str) -> list:
    """The process state letters of the container's processes, from the host's /proc."""
    pid = int(prl.out("inspect", "--format", "{{.State.Pid}}", cid))
    wanted = os.readlink("/proc/%d/ns/pid" % pid)
    found = []
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.readlink("/proc/%s/ns/pid" % name) == wanted:
                with open("/proc/%s/stat" % name, "rb") as f:
                    found.append(f.read().rsplit(b")", 1)[1].split()[0].decode())
        except OSError:
            pass
    return found


def ticks(prl, cid: str) -> int:
    return int(prl.out("logs", cid).split()[-1])


def test_pause_stops_every_process_and_unpause_resumes(prl):
    cid = prl.out("run", "-d", "busybox", "sh", "-c",
                  "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done").strip()
    proc = prl("pause", cid)
    assert proc.stdout.decode() == cid + "\n"
    assert "no cgroup of its own" in proc.stderr.decode() and proc.stderr.decode().count("\n") == 1
    assert set(states(prl, cid)) <= {"T", "t"}, states(prl, cid)
    assert prl.out("ps", "--format", "{{.Status}}").strip().endswith("(Paused)")
    assert prl.out("inspect", "--format", "{{.State.Status}} {{.State.Paused}}", cid).strip() == "paused true"
    before = ticks(prl, cid)
    time.sleep(0.5)
    assert ticks(prl, cid) == before  # nothing ran
    assert prl.out("unpause", cid) == cid + "\n"
    time.sleep(0.5)
    assert ticks(prl, cid) > before
    assert "T" not in states(prl, cid)
    assert prl.out("inspect", "--format", "{{.State.Status}}", cid).strip() == "running"
    prl("rm", "-f", cid)


def test_refusals_are_dockers(prl):
    cid = prl.out("create", "busybox", "sleep", "100").strip()
    for verb, text in (("pause", "container %s is not running" % cid), ("unpause", "Container %s is not paused" % cid)):
        proc = prl(verb, cid, check=False)
        assert proc.returncode == 1 and proc.stderr.decode() == "rootless: error: %s\n" % text
    prl("start", cid)
    prl("pause", cid)
    proc = prl("pause", cid, check=False)
    assert proc.returncode == 1 and "container %s is already paused" % cid in proc.stderr.decode()
    proc = prl("exec", cid, "true", check=False)
    assert proc.returncode == 1 and "is paused, unpause the container before exec" in proc.stderr.decode()
    prl("rm", "-f", cid)


def test_a_paused_container_can_be_stopped(prl):
    cid = prl.out("run", "-d", "busybox", "sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done").strip()
    prl("pause", cid)
    prl("stop", "-t", "5", cid)
    assert prl.out("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", cid).strip() == "exited 3"
    prl("rm", cid)
