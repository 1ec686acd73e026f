"""``stats`` on this machine (no container has a cgroup of its own: the figures are summed
from /proc over the container's processes): Docker's columns, formats and errors, a busy
loop near 100% of a CPU and an idle one near 0, the memory a process holds. (From the
cgroup's files: tests/vm.)"""

import json
import re

import pytest

from conftest import loaded_root

HEADER = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]


@pytest.fixture(scope="module")
def srl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "stats")


def row(srl, *refs, **fields):
    out = srl.out("stats", "--no-stream", "--format", "json", *refs)
    return {r["Name"]: r for r in map(json.loads, out.splitlines())}


def percent(text: str) -> float:
    assert re.fullmatch(r"\d+\.\d\d%", text), text
    return float(text[:-1])


def test_columns_and_figures(srl):
    busy = srl.out("run", "-d", "--name", "busy", "--network", "none", "busybox", "sh", "-c", "while :; do :; done").strip()
    srl("run", "-d", "--name", "idle", "--network", "none", "busybox", "sh", "-c",
        "x=$(head -c 30000000 /dev/zero | tr '\\0' a); sleep 100")
    proc = srl("stats", "--no-stream")
    notice = proc.stderr.decode()
    assert notice.count("\n") == 1 and "has no cgroup of its own" in notice, notice  # says why, once
    table = proc.stdout.decode().splitlines()
    assert re.split(r"\s{2,}", table[0]) == HEADER
    assert sorted(line.split()[1] for line in table[1:]) == ["busy", "idle"]
    assert any(line.startswith(busy[:12] + " ") for line in table[1:])
    rows = row(srl)
    assert list(rows["busy"]) == sorted(rows["busy"])  # Docker's JSON keys, in order
    assert percent(rows["busy"]["CPUPerc"]) > 50 and percent(rows["idle"]["CPUPerc"]) < 20
    assert rows["busy"]["PIDs"] == "1" and rows["busy"]["NetIO"] == "0B / 0B"
    usage, limit = rows["idle"]["MemUsage"].split(" / ")
    assert re.fullmatch(r"[\d.]+(B|KiB|MiB|GiB)", usage) and limit.endswith("GiB")  # the host's memory
    only = srl.out("stats", "--no-stream", "--format", "{{.Name}}: {{.PIDs}}", "busy")
    assert only == "busy: 1\n"
    assert srl.out("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}", "busy").strip() == busy
    srl("rm", "-f", "busy", "idle")


def test_stopped_containers_and_errors(srl):
    cid = srl.out("create", "--name", "later", "busybox", "true").strip()
    assert srl.out("stats", "--no-stream", "--format", "{{.Name}}") == ""  # only running ones
    assert srl.out("stats", "--no-stream", "-a", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}") == \
        "later 0.00% 0B / 0B 0\n"
    proc = srl("stats", "--no-stream", "nosuch", check=False)
    assert proc.returncode == 1 and proc.stderr.decode() == "rootless: error: No such container: nosuch\n"
    bad = srl("stats", "--no-stream", "--format", "{{.Nope}}", check=False)
    assert bad.returncode != 0 and bad.stderr.decode().count("\n") == 1
    srl("rm", cid)


def test_streaming_refreshes_until_interrupted(srl):
    import signal
    import subprocess
    import time
    srl("run", "-d", "--name", "stream", "busybox", "sleep", "100")
    proc = srl.popen("stats", "--format", "{{.Name}} {{.PIDs}}", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(3.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    frames = out.decode().split("\033[2J\033[H")[1:]
    assert len(frames) >= 2 and all(f == "stream 1\n" for f in frames), frames
    srl("rm", "-f", "stream")
