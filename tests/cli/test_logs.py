"""``rootless logs``: a real container (``rootless create`` from the busybox test image),
whose log is written here with the Writer the monitor uses, read by the built zipapp.

Until detached containers land, a "running" container is one whose record names a live
process of ours as its monitor: the follow tests end that process as a container's
monitor would end, and ``logs -f`` must stop once everything is printed.
"""

import calendar
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import loaded_root
from rootless import paths
from rootless.runtime import state
from rootless.runtime.logfile import Writer

T0 = calendar.timegm((2026, 12, 2, 1, 52, 24)) * 10 ** 9


@pytest.fixture(scope="module")
def crl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "logs")


def containers(crl):
    return state.Containers(paths.resolve(crl.root))


def create(crl, name):
    cid = crl.out("create", "--name", name, "busybox", "true").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), cid
    return cid


def log_of(crl, cid):
    return os.path.join(containers(crl).dir(cid), cid + "-json.log")


@pytest.fixture(scope="module")
def talker(crl):
    """A container whose log has stdout and stderr lines, one second apart."""
    cid = create(crl, "talker")
    with Writer(log_of(crl, cid)) as w:
        for i, (stream, text) in enumerate([("stdout", b"out one\n"), ("stderr", b"err one\n"),
                                            ("stdout", b"out two\n"), ("stderr", b"err two\n"),
                                            ("stdout", b"out three\n")]):
            w.write(stream, text, now_ns=T0 + i * 10 ** 9)
    return cid


def test_each_line_goes_to_its_own_stream(crl, talker):
    for ref in ("talker", talker, talker[:5]):
        for verb in (["logs"], ["container", "logs"]):
            proc = crl(*verb, ref)
            assert proc.stdout == b"out one\nout two\nout three\n"
            assert proc.stderr == b"err one\nerr two\n"


def test_timestamps_tail_since_until(crl, talker):
    proc = crl("logs", "-t", "--tail", "2", "talker")
    assert proc.stdout == b"2026-12-02T01:52:28.000000000Z out three\n"
    assert proc.stderr == b"2026-12-02T01:52:27.000000000Z err two\n"
    assert crl("logs", "-n", "0", "talker").stdout == b""
    for tail in ("all", "-1", "lots"):  # not a number: all, as dockerd reads it
        assert crl("logs", "--tail", tail, "talker").stdout == b"out one\nout two\nout three\n"
    since = crl("logs", "--since", "2026-12-02T01:52:26Z", "--until", str(T0 // 10 ** 9 + 3), "talker")
    assert (since.stdout, since.stderr) == (b"out two\n", b"err two\n")
    assert crl("logs", "--since", "2026-12-02T02:52:26+01:00", "talker").stdout == b"out two\nout three\n"
    assert crl("logs", "--until", "2026-12-02T01:52:24.5Z", "talker").stdout == b"out one\n"


def test_relative_since_and_until_count_back_from_now(crl):
    cid = create(crl, "recent")
    now = time.time_ns()
    with Writer(log_of(crl, cid)) as w:
        for hours, text in ((3, b"three hours ago\n"), (2, b"two hours ago\n"), (0, b"just now\n")):
            w.write("stdout", text, now_ns=now - hours * 3600 * 10 ** 9)
    assert crl("logs", "--since", "90m", "recent").stdout == b"just now\n"
    assert crl("logs", "--until", "2h30m", "recent").stdout == b"three hours ago\n"
    assert crl("logs", "--since", "4h", "--until", "1h", "recent").stdout == b"three hours ago\ntwo hours ago\n"


def test_details_and_long_lines(crl):
    cid = create(crl, "detailed")
    with Writer(log_of(crl, cid), attrs={"tier": "front end", "app": "web&co"}) as w:
        w.write("stdout", b"y" * 40000 + b"\n", now_ns=T0)  # three pieces in the file
    lines = open(log_of(crl, cid), "rb").read().splitlines()
    assert len(lines) == 3
    assert crl("logs", "detailed").stdout == b"y" * 40000 + b"\n"
    details = crl("logs", "--details", "detailed").stdout
    assert details.startswith(b"app=web%26co,tier=front+end " + b"y" * 16384 + b"app=")
    plain = create(crl, "plain")
    with Writer(log_of(crl, plain)) as w:
        w.write("stdout", b"no attrs\n", now_ns=T0)
    assert crl("logs", "--details", "plain").stdout == b" no attrs\n"  # Docker's lone space
    assert crl("logs", "-t", "--details", "plain").stdout == b"2026-12-02T01:52:24.000000000Z  no attrs\n"


def test_a_container_never_started_has_empty_logs(crl):
    create(crl, "quiet")
    proc = crl("logs", "-f", "quiet")  # not running: -f does not wait
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")


def test_errors(crl):
    proc = crl("logs", "no-such-container", check=False)
    assert proc.returncode == 125 and b"No such container: no-such-container" in proc.stderr
    proc = crl("logs", "--since", "yesterday", "talker", check=False)
    assert proc.returncode == 125
    assert proc.stderr.decode().strip() == ('rootless: error: invalid value for "since": failed to parse '
                                            'value as time or duration: "yesterday"')
    cid = create(crl, "silent")
    c = containers(crl)
    record = c.find(cid)
    record["log"] = {"driver": "none", "opts": {}}
    c.save(record)
    proc = crl("logs", "silent", check=False)
    assert proc.returncode == 125
    assert proc.stderr.decode().strip() == "rootless: error: configured logging driver does not support reading"


# -- following ------------------------------------------------------------------------------

@pytest.fixture
def running(crl):
    """A created container marked running, its "monitor" a process of ours."""
    cid = create(crl, "follow-%d" % time.monotonic_ns())
    monitor = subprocess.Popen(["sleep", "300"])
    try:
        owner = {"pid": monitor.pid, "start": state.process_start_time(monitor.pid)}
        containers(crl).update(cid, lambda r: state.begin_run(r, owner))
        yield cid, monitor
    finally:
        monitor.kill()
        monitor.wait()


def read_until(pipe, want: bytes, timeout=10.0) -> bytes:
    os.set_blocking(pipe.fileno(), False)
    got, deadline = b"", time.monotonic() + timeout
    while want not in got and time.monotonic() < deadline:
        chunk = pipe.read()
        if chunk:
            got += chunk
        else:
            time.sleep(0.02)
    return got


def test_follow_prints_new_lines_across_rotations_and_ends_with_the_container(crl, running):
    cid, monitor = running
    w = Writer(log_of(crl, cid), max_size=300, max_file=3)
    w.write("stdout", b"before\n")
    logs = crl.popen("logs", "-f", cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_until(logs.stdout, b"before\n") == b"before\n"
        got = b""
        for i in range(30):  # several rotations, slowly enough to be seen
            w.write("stdout", b"line %02d\n" % i)
            if i % 3 == 2:
                got += read_until(logs.stdout, b"line %02d\n" % i)
        w.write("stdout", b"last words")  # a partial: written at close, before the monitor ends
        w.close()
        assert len(os.listdir(os.path.dirname(log_of(crl, cid)))) > 0
        monitor.send_signal(signal.SIGKILL)
        monitor.wait()
        rest, err = logs.communicate(timeout=10)
    finally:
        if logs.poll() is None:
            logs.kill()
            logs.wait()
    assert logs.returncode == 0, err
    assert got + rest == b"".join(b"line %02d\n" % i for i in range(30)) + b"last words"
    assert containers(crl).find(cid)["status"] == state.EXITED  # settled by the reader


def test_follow_since_and_until(crl, running):
    cid, monitor = running
    w = Writer(log_of(crl, cid))
    w.write("stdout", b"old\n", now_ns=time.time_ns() - 60 * 10 ** 9)
    # --until 30s: "old" is printed, then the follow waits; the first newer line ends it.
    until = crl.popen("logs", "-f", "--until", "30s", cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    since = crl.popen("logs", "-f", "-t", "--since", "1s", cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_until(until.stdout, b"old\n") == b"old\n"
        time.sleep(0.3)
        assert until.poll() is None
        w.write("stderr", b"new\n")
        out, err = until.communicate(timeout=10)
        assert (until.returncode, out, err) == (0, b"", b"")
        err = read_until(since.stderr, b"new\n")
        assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z new\n", err), err
        w.close()
        monitor.kill()
        monitor.wait()
        out, _ = since.communicate(timeout=10)
        assert out == b"" and since.returncode == 0  # "old" is older than --since 1s
    finally:
        for p in (until, since):
            if p.poll() is None:
                p.kill()
                p.wait()
