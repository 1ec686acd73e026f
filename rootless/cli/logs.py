"""``logs`` and ``container logs``: print a container's json-file log, as ``docker logs``.

Output is Docker's: each line on the stream it came from (stdout lines to stdout, stderr
lines to stderr, in the order they were logged), ``-t`` puts the time first (nine digits
of fraction, always) and a space, ``--details`` puts the line's attributes
(``key=value,...``, URL-query escaped, sorted by key; nothing when there are none) and a
space. ``-f`` follows only a container that is running, as dockerd does, and ends when it
has stopped and everything it wrote has been printed.
"""

import os
import re
import sys

RUNNING_STATES = ("running", "restarting")


def add_parsers(sub, csub) -> None:
    """``logs`` at the top level and under ``container``."""
    for p in [parent.add_parser("logs", help="fetch the logs of a container")
              for parent in (sub, csub) if parent is not None]:
        p.add_argument("container", metavar="CONTAINER")
        p.add_argument("--details", action="store_true", help="show extra details provided to logs")
        p.add_argument("-f", "--follow", action="store_true", help="follow log output")
        p.add_argument("--since", default="", help='show logs since timestamp (e.g. "2013-01-02T13:23:37Z") '
                       'or relative (e.g. "42m" for 42 minutes)')
        p.add_argument("-n", "--tail", default="all",
                       help='number of lines to show from the end of the logs (default "all")')
        p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
        p.add_argument("--until", default="", help='show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") '
                       'or relative (e.g. "42m" for 42 minutes)')
        p.set_defaults(handler=cmd_logs)


def tail_lines(text: str) -> int:
    """``--tail`` as dockerd reads it (strconv.Atoi): not a number means all (-1)."""
    if re.match(r"[+-]?[0-9]+\Z", text) and -2 ** 63 <= int(text) < 2 ** 63:
        return int(text)
    return -1


def log_path(containers, record: dict) -> str:
    return os.path.join(containers.dir(record["id"]), record["id"] + "-json.log")


def cmd_logs(ctx, args) -> int:
    import time
    from rootless.errors import Unsupported
    from rootless.runtime import logread, logtime, state
    containers = state.Containers(ctx.paths())
    record = containers.find(args.container)
    if (record.get("log") or {}).get("driver", "json-file") == "none":
        raise Unsupported("configured logging driver does not support reading")
    since, until = logtime.window(args.since, args.until, time.time_ns(), logtime.local_offset())
    follow = args.follow and record["status"] in RUNNING_STATES
    out = Output(sys.stdout.buffer, sys.stderr.buffer, args.timestamps, args.details)
    try:
        for entry in logread.read(log_path(containers, record), tail=tail_lines(args.tail),
                                  since=since, until=until, follow=follow,
                                  still_running=still_running(containers, record["id"]), idle=out.flush):
            out.add(entry)
    finally:
        out.flush()
    _warn_lost(containers.paths.run, record)
    return 0


def _warn_lost(run_dir: str, record: dict) -> None:
    """What the monitor could not write to this log (a full disk), as one line after the
    output: the log alone cannot tell that lines are missing from it."""
    from rootless.runtime import logloss
    text = logloss.warning(run_dir, record["id"])
    if text:
        sys.stderr.write("rootless: warning: container %s: %s\n" % (record["name"], text))
        sys.stderr.flush()


def still_running(containers, cid: str):
    """Whether the container is still running, from its record read afresh (one file,
    not the whole list: this is asked at every poll of a follow)."""
    from rootless import fsutil
    from rootless.runtime import state
    path = os.path.join(containers.dir(cid), state.RECORD)

    def check() -> bool:
        try:
            record = fsutil.read_json(path)
        except (OSError, ValueError):
            return False
        if not isinstance(record, dict):
            return False
        record = containers.settle(record)
        return record is not None and record.get("status") in RUNNING_STATES
    return check


class Output:
    """Entries to stdout and stderr in their order: runs of one stream are written
    together, and a switch of stream first writes out what the other one has."""

    LIMIT = 1 << 16

    def __init__(self, stdout, stderr, timestamps: bool, details: bool):
        from rootless.runtime.logtime import fixed_nano
        self.files = {"stdout": stdout, "stderr": stderr}
        self.time = fixed_nano if timestamps else None
        self.details = details
        self.stream, self.parts, self.size = None, [], 0

    def add(self, entry) -> None:
        if entry.stream not in self.files:
            return
        if entry.stream != self.stream:
            self.flush()
            self.stream = entry.stream
        data = _utf8(self.format(entry))
        self.parts.append(data)
        self.size += len(data)
        if self.size >= self.LIMIT:
            self.flush()

    def format(self, entry) -> str:
        text = entry.log
        if self.details:
            text = attrs_text(entry.attrs) + " " + text
        if self.time:
            text = self.time(entry.time) + " " + text
        return text

    def flush(self) -> None:
        if self.parts:
            f = self.files[self.stream]
            f.write(b"".join(self.parts))
            f.flush()
            self.parts, self.size = [], 0


def attrs_text(attrs) -> str:
    """Docker's ``--details`` prefix: ``k=v,k2=v2`` with Go's url.QueryEscape."""
    if not attrs:
        return ""
    from urllib.parse import quote_plus
    return ",".join("%s=%s" % (quote_plus(str(k), safe=""), quote_plus(str(attrs[k]), safe=""))
                    for k in sorted(attrs))


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate escape (\ud800) in the file: Go's decoder makes it U+FFFD.
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text).encode("utf-8")
