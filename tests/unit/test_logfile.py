"""rootless.runtime.logfile and logread: Docker's json-file log, written and read back.

The expected bytes are those dockerd writes (daemon/logger/jsonfilelog, copier.go): its
own JSON string encoder, Go's RFC3339Nano, 16 KiB partial lines, its rotation order. The
full-disk case runs on a real 16 KiB tmpfs, mounted in a user namespace of our own.
"""

import calendar
import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, need
from rootless.runtime import logread
from rootless.runtime.logfile import PARTIAL_SIZE, Writer, encode_log, format_time, writer_for

T0 = calendar.timegm((2026, 12, 2, 1, 52, 24)) * 10 ** 9  # 2026-12-02T01:52:24Z


def lines_of(path):
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


def entries(path):
    return [json.loads(line) for line in lines_of(path)]


@pytest.fixture
def log(tmp_path):
    return str(tmp_path / ("f" * 64 + "-json.log"))


# -- the format -----------------------------------------------------------------------------

def test_a_line_is_exactly_what_dockerd_writes(log):
    with Writer(log) as w:
        w.write("stdout", b"hello\n", now_ns=T0 + 123456789)
        w.write("stderr", b"oops\n", now_ns=T0 + 5)
    assert lines_of(log) == [
        b'{"log":"hello\\n","stream":"stdout","time":"2026-12-02T01:52:24.123456789Z"}\n',
        b'{"log":"oops\\n","stream":"stderr","time":"2026-12-02T01:52:24.000000005Z"}\n']


@pytest.mark.parametrize("ns, text", [
    (T0, b"2026-12-02T01:52:24Z"),                     # a whole second: no fraction at all
    (T0 + 120000000, b"2026-12-02T01:52:24.12Z"),      # trailing zeros dropped
    (T0 + 100, b"2026-12-02T01:52:24.0000001Z"),
    (0, b"1970-01-01T00:00:00Z"),
    (951782400 * 10 ** 9 + 999999999, b"2000-02-29T00:00:00.999999999Z"),
])
def test_time_is_go_rfc3339nano_in_utc(ns, text):
    assert format_time(ns) == text


@pytest.mark.parametrize("raw, quoted", [
    (b"plain text", '"plain text"'),
    (b'say "hi" \\ bye', r'"say \"hi\" \\ bye"'),
    (b"a\tb", r'"a\u0009b"'),                          # not \t: Docker's encoder
    (b"\x08\x0c\r", r'"\u0008\u000c\r"'),              # \b \f as \u, \r short
    (b"\x00\x01\x1b[31mred", r'"\u0000\u0001\u001b[31mred"'),
    (b"<a href='x'>&amp;</a>", r'"\u003ca href=' + "'x'" + r'\u003e\u0026amp;\u003c/a\u003e"'),
    (b"del\x7f", '"del\x7f"'),                         # DEL is not escaped
    ("é ✓ 😀".encode(), '"é ✓ 😀"'),                   # valid UTF-8 kept as it is
    ("\u2028\u2029".encode(), r'"\u2028\u2029"'),
    (b"\xff", r'"\ufffd"'),                            # one U+FFFD per invalid byte
    (b"\xe2\x82", r'"\ufffd\ufffd"'),                  # a truncated sequence: two bytes
    (b"\xed\xa0\x80", r'"\ufffd\ufffd\ufffd"'),        # an encoded surrogate
    (b"\xc0\xaf", r'"\ufffd\ufffd"'),                  # an overlong form
    (b"\xf4\x90\x80\x80", r'"\ufffd\ufffd\ufffd\ufffd"'),  # past U+10FFFF
    (b"\xe2\xe2\x82\xac<", r'"\ufffd€\u003c"'),        # an invalid byte, then a valid euro
    ("\ufffd".encode(), '"\ufffd"'),                   # a real U+FFFD stays raw bytes
])
def test_escaping_is_dockers(raw, quoted):
    assert encode_log(raw) == quoted


def test_invalid_utf8_and_escapes_read_back_as_docker_reads_them(log):
    with Writer(log) as w:
        w.write("stdout", b"\xff<\t>\n", now_ns=T0)
    assert lines_of(log)[0].startswith(b'{"log":"\\ufffd\\u003c\\u0009\\u003e\\n"')
    assert entries(log)[0]["log"] == "\ufffd<\t>\n"


def test_attrs_sit_between_stream_and_time_sorted(log):
    with Writer(log, attrs={"zone": "a<b", "app": "tab\there"}) as w:
        w.write("stdout", b"x\n", now_ns=T0)
    assert lines_of(log) == [b'{"log":"x\\n","stream":"stdout","attrs":{"app":"tab\\there","zone":"a\\u003cb"},'
                             b'"time":"2026-12-02T01:52:24Z"}\n']


# -- lines ----------------------------------------------------------------------------------

def test_chunks_are_split_into_lines_per_stream(log):
    with Writer(log) as w:
        w.write("stdout", b"hel", now_ns=T0)
        w.write("stderr", b"err one\nerr", now_ns=T0 + 1)
        w.write("stdout", b"lo\nworld\n\nand", now_ns=T0 + 2)
        w.write("stderr", b" two\n", now_ns=T0 + 3)
        w.write("stdout", b" more\n", now_ns=T0 + 4)
    got = [(e["stream"], e["log"], e["time"]) for e in entries(log)]
    assert got == [("stderr", "err one\n", "2026-12-02T01:52:24.000000001Z"),
                   ("stdout", "hello\n", "2026-12-02T01:52:24.000000002Z"),  # the time it ended
                   ("stdout", "world\n", "2026-12-02T01:52:24.000000002Z"),
                   ("stdout", "\n", "2026-12-02T01:52:24.000000002Z"),
                   ("stderr", "err two\n", "2026-12-02T01:52:24.000000003Z"),
                   ("stdout", "and more\n", "2026-12-02T01:52:24.000000004Z")]


def test_a_long_line_is_written_in_16k_pieces_with_the_first_pieces_time(log):
    assert PARTIAL_SIZE == 16384
    with Writer(log) as w:
        w.write("stdout", b"a" * 10000, now_ns=T0)
        w.write("stdout", b"a" * 10000, now_ns=T0 + 1)   # 16384 reached: first piece
        w.write("stdout", b"a" * 15000, now_ns=T0 + 2)   # second piece
        w.write("stdout", b"bbb\nnext\n", now_ns=T0 + 3)  # the rest of the line, then another
    got = entries(log)
    assert [len(e["log"]) for e in got] == [16384, 16384, 35000 - 2 * 16384 + 4, 5]
    assert got[0]["log"] == "a" * 16384 and not got[1]["log"].endswith("\n")
    assert got[2]["log"].endswith("aaabbb\n")
    assert [e["time"] for e in got] == ["2026-12-02T01:52:24.000000001Z"] * 3 + ["2026-12-02T01:52:24.000000003Z"]


@pytest.mark.parametrize("length, pieces", [(16383, ["x" * 16383 + "\n"]),
                                            (16384, ["x" * 16384, "\n"]),  # as dockerd: full buffer first
                                            (16385, ["x" * 16384, "x\n"])])
def test_the_16k_boundary(log, length, pieces):
    with Writer(log) as w:
        w.write("stdout", b"x" * length + b"\n", now_ns=T0)
    assert [e["log"] for e in entries(log)] == pieces


def test_what_is_left_at_eof_is_a_partial_without_newline(log):
    w = Writer(log)
    w.write("stdout", b"out no newline", now_ns=T0)
    w.write("stderr", b"err no newline", now_ns=T0)
    w.eof("stdout", now_ns=T0 + 1)
    assert [e["log"] for e in entries(log)] == ["out no newline"]
    w.write("stdout", b"after\n", now_ns=T0 + 2)
    w.close()
    assert [e["log"] for e in entries(log)] == ["out no newline", "after\n", "err no newline"]


def test_reopening_appends_and_cuts_a_torn_last_entry(log):
    with Writer(log) as w:
        w.write("stdout", b"one\n", now_ns=T0)
    with open(log, "ab") as f:
        f.write(b'{"log":"tor')  # a writer killed in the middle of an entry
    with Writer(log) as w:
        w.write("stdout", b"two\n", now_ns=T0)
    assert [e["log"] for e in entries(log)] == ["one\n", "two\n"]
    assert os.stat(log).st_mode & 0o777 == 0o640


# -- rotation -------------------------------------------------------------------------------

def write_numbered(w, count, start=0, ns=None):
    for i in range(start, start + count):
        w.write("stdout", b"line %04d\n" % i, now_ns=T0 + i if ns is None else ns)


def test_rotation_keeps_max_file_files_newest_first(log):
    one = len(b'{"log":"line 0000\\n","stream":"stdout","time":"2026-12-02T01:52:24.123456789Z"}\n')
    with Writer(log, max_size=10 * one, max_file=3) as w:
        write_numbered(w, 95, ns=T0 + 123456789)
    names = sorted(os.listdir(os.path.dirname(log)))
    assert names == [os.path.basename(log) + s for s in ("", ".1", ".2")]
    # Docker checks the size before each entry: a full file holds 10 entries here.
    assert [len(lines_of(log + s)) for s in (".2", ".1", "")] == [10, 10, 5]
    assert [e["log"] for s in (".2", ".1", "") for e in entries(log + s)] == \
        ["line %04d\n" % i for i in range(70, 95)]


def test_max_file_1_starts_the_file_again(log):
    with Writer(log, max_size=200, max_file=1) as w:
        write_numbered(w, 7)
    assert os.listdir(os.path.dirname(log)) == [os.path.basename(log)]
    assert [e["log"] for e in entries(log)] == ["line 0006\n"]


def test_max_file_without_max_size_never_rotates(log):
    with writer_for(log, {"max_size": None, "max_file": 3}) as w:
        write_numbered(w, 100)
    assert len(lines_of(log)) == 100 and len(os.listdir(os.path.dirname(log))) == 1


def test_compress_gzips_rotated_files_and_the_reader_reads_them(log):
    with Writer(log, max_size=500, max_file=4, compress=True) as w:
        write_numbered(w, 40)
    names = sorted(os.listdir(os.path.dirname(log)))
    base = os.path.basename(log)
    assert names == [base, base + ".1.gz", base + ".2.gz", base + ".3.gz"]
    with gzip.open(log + ".1.gz") as f:
        assert f.read().endswith(b"\n")
    got = [e.log for e in logread.read(log)]
    assert got == ["line %04d\n" % i for i in range(40 - len(got), 40)] and len(got) > 15
    assert [e.log for e in logread.read(log, tail=12)] == got[-12:]


def test_a_rotation_that_cannot_rename_starts_the_file_again_and_says_so(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    log = str(d / "c-json.log")
    w = Writer(log, max_size=100, max_file=3)
    os.mkdir(log + ".1")  # a directory where .2 must go: the shift fails
    os.mkdir(log + ".2")
    with open(log + ".2/x", "w"):
        pass
    write_numbered(w, 3)
    w.close()
    assert w.error and log in w.error
    assert [e["log"] for e in entries(log)] == ["line 0002\n"]


# -- a full disk ----------------------------------------------------------------------------

def full_disk_scenario(top):
    """Runs in a child, with a 16 KiB tmpfs at ``top``: fill it, then free room."""
    filler = os.path.join(top, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * 8192)
    log = os.path.join(top, "c-json.log")
    w = Writer(log)
    raised = None
    try:
        for i in range(300):
            w.write("stdout", b"line %03d %s\n" % (i, b"x" * 40), now_ns=T0 + i)
    except Exception as e:
        raised = repr(e)
    full = {"raised": raised, "error": w.error, "lost": w.lost_lines, "lost_bytes": w.lost_bytes,
            "lines": [json.loads(line)["log"] for line in lines_of(log)],
            "ends_whole": open(log, "rb").read().endswith(b"\n")}
    os.unlink(filler)
    w.write("stdout", b"after the disk had room again\n", now_ns=T0 + 1000)
    w.close()
    full["after"] = [json.loads(line)["log"] for line in lines_of(log)][-1]
    return full


def test_a_full_disk_never_raises_and_never_tears_a_line(tmp_path):
    need(shutil.which("unshare") is not None, "unshare (util-linux) to mount a small tmpfs")
    top = str(tmp_path / "small")
    os.mkdir(top)
    here = os.path.dirname(os.path.abspath(__file__))
    code = ("import json, sys; sys.path[:0] = [%r, %r, %r]; import test_logfile as t; "
            "print(json.dumps(t.full_disk_scenario(%r)))" % (REPO, here, os.path.dirname(here), top))
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                           'mount -t tmpfs -o size=16k rl-test "$1" || exit 97; exec "$2" -c "$3"', "sh", top,
                           sys.executable, code], capture_output=True, text=True, timeout=120)
    need(proc.returncode != 97, "a user namespace that may mount a tmpfs: %s" % proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["raised"] is None
    assert got["error"] == "cannot write the log %s/c-json.log: No space left on device" % top
    assert got["ends_whole"] and len(got["lines"]) > 10
    assert got["lines"] == ["line %03d %s\n" % (i, "x" * 40) for i in range(len(got["lines"]))]
    assert got["lost"] == 300 - len(got["lines"])
    assert got["lost_bytes"] > got["lost"] * 90
    assert got["after"] == "after the disk had room again\n"


# -- reading --------------------------------------------------------------------------------

def test_read_all_tail_and_streams(log):
    with Writer(log, max_size=400, max_file=5) as w:
        for i in range(20):
            w.write("stderr" if i % 2 else "stdout", b"n%02d\n" % i, now_ns=T0 + i * 10 ** 9)
    assert len(os.listdir(os.path.dirname(log))) > 2
    every = list(logread.read(log))
    assert [e.log for e in every] == ["n%02d\n" % i for i in range(20 - len(every), 20)]
    assert all(e.stream == ("stderr" if int(e.log[1:3]) % 2 else "stdout") for e in every)
    assert [e.log for e in logread.read(log, tail=7)] == [e.log for e in every[-7:]]
    assert [e.log for e in logread.read(log, tail=1000)] == [e.log for e in every]
    assert list(logread.read(log, tail=0)) == []
    assert [e.log for e in logread.read(log, tail=-3)] == [e.log for e in every]


def test_since_until_and_tail_are_applied_in_dockers_order(log):
    with Writer(log) as w:
        for i in range(10):
            w.write("stdout", b"s%d\n" % i, now_ns=T0 + i * 10 ** 9)
    sec = 10 ** 9
    assert [e.log for e in logread.read(log, since=T0 + 3 * sec)][0] == "s3\n"  # since is inclusive
    assert [e.log for e in logread.read(log, until=T0 + 3 * sec)][-1] == "s3\n"  # until too
    assert [e.log for e in logread.read(log, since=T0 + 2 * sec, until=T0 + 4 * sec)] == ["s2\n", "s3\n", "s4\n"]
    assert [e.log for e in logread.read(log, tail=3, since=T0 + 8 * sec)] == ["s8\n", "s9\n"]  # tail first
    assert list(logread.read(log, until=T0 - 1)) == []


def test_since_stops_checking_after_the_first_line_it_lets_through(log):
    with Writer(log) as w:
        for i, sec in enumerate((1, 5, 2, 6)):
            w.write("stdout", b"%d\n" % i, now_ns=T0 + sec * 10 ** 9)
    assert [e.log for e in logread.read(log, since=T0 + 4 * 10 ** 9)] == ["1\n", "2\n", "3\n"]


def test_a_torn_last_line_and_garbage_are_skipped(log):
    with Writer(log) as w:
        w.write("stdout", b"good\n", now_ns=T0)
    with open(log, "ab") as f:
        f.write(b"not json\n[1,2]\n" + b'{"log":"also good\\n","stream":"stderr","time":"2026-12-02T01:52:24Z"}\n'
                + b'{"log":"torn')
    assert [(e.stream, e.log) for e in logread.read(log)] == [("stdout", "good\n"), ("stderr", "also good\n")]
    assert [e.log for e in logread.read(log, tail=1)] == ["also good\n"]
    assert [e.log for e in logread.read(log, tail=3)] == ["also good\n"]  # tail counts lines, then skips


# -- following ------------------------------------------------------------------------------

def test_follow_reads_what_comes_across_rotations_and_stops_with_the_container(log):
    """A writer in a thread, rotating every 25 lines or so; the reader polls every 20 ms.
    (Nine rotated files: a reader is only outrun when it misses nine rotations.)"""
    w = Writer(log, max_size=2000, max_file=10)
    write_numbered(w, 5)
    done = threading.Event()

    def container():
        for i in range(5, 400):
            w.write("stdout", b"line %04d\n" % i)
            if i % 5 == 0:
                time.sleep(0.002)
        w.close()
        done.set()
    t = threading.Thread(target=container)
    t.start()
    got = [e.log for e in logread.read(log, follow=True, still_running=lambda: not done.is_set(), interval=0.02)]
    t.join()
    assert got == ["line %04d\n" % i for i in range(400)]


def test_follow_finds_files_rotated_twice_between_two_polls(log):
    """Deterministic: each wait of the reader is where the "container" writes."""
    w = Writer(log, max_size=150, max_file=5)
    write_numbered(w, 2)
    steps = [lambda: write_numbered(w, 3, 2),      # one rotation
             lambda: write_numbered(w, 6, 5),      # several rotations before the next poll
             lambda: None]
    got = [e.log for e in logread.read(log, follow=True, still_running=lambda: bool(steps),
                                       interval=0, idle=lambda: steps.pop(0)())]
    assert got == ["line %04d\n" % i for i in range(11)]
    w.close()


def test_follow_waits_for_a_line_to_be_whole_and_starts_at_the_end_with_tail_0(log):
    with Writer(log) as w:
        w.write("stdout", b"old\n", now_ns=T0)
    f = open(log, "ab")
    part = b'{"log":"new\\n","stream":"stdout","time":"2026-12-02T01:52:25Z"}\n'
    steps = [lambda: (f.write(part[:20]), f.flush()), lambda: (f.write(part[20:]), f.flush()), lambda: None]
    got = [e.log for e in logread.read(log, tail=0, follow=True, still_running=lambda: bool(steps),
                                       interval=0, idle=lambda: steps.pop(0)())]
    f.close()
    assert got == ["new\n"]


def test_follow_of_a_log_not_yet_created_and_until(log):
    def create_and_write():
        with Writer(log) as w:
            write_numbered(w, 5)
    steps = [lambda: None, create_and_write]
    got = list(logread.read(log, follow=True, until=T0 + 2, still_running=lambda: True,
                            interval=0, idle=lambda: steps.pop(0)()))
    assert [e.log for e in got] == ["line 0000\n", "line 0001\n", "line 0002\n"]  # then until ends it


def test_an_idle_follow_costs_little_cpu(log):
    with Writer(log) as w:
        w.write("stdout", b"x\n")
    started = time.monotonic()
    cpu = time.process_time()
    list(logread.read(log, follow=True, still_running=lambda: time.monotonic() - started < 1.0))
    assert time.process_time() - cpu < 0.05  # 0.1 s polls: a stat and a read each


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_a_long_follow_holds_no_more_files_as_rotations_go_by(log):
    w = Writer(log, max_size=200, max_file=3)
    seen, steps = [], [lambda i=i: write_numbered(w, 4, 4 * i) for i in range(50)]

    def step():
        seen.append(open_fds())
        steps.pop(0)()
    before = open_fds()
    got = list(logread.read(log, follow=True, still_running=lambda: bool(steps), interval=0, idle=step))
    w.close()
    assert len(got) == 200
    assert max(seen) - min(seen) <= 1 and open_fds() == before - 1  # the writer's own fd is closed too


def test_a_reader_left_half_way_closes_its_files(log):
    with Writer(log, max_size=300, max_file=4, compress=True) as w:
        write_numbered(w, 30)
    before = open_fds()
    reader = logread.read(log, follow=True, still_running=lambda: True)
    next(reader)
    assert open_fds() > before
    reader.close()
    assert open_fds() == before
