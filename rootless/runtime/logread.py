"""Reading a json-file log back, as dockerd's json-file reader does (``docker logs``).

The files are read oldest first: ``ID-json.log.N`` (or ``.N.gz``) ... ``.1``, then the
current ``ID-json.log`` up to its size when reading began. Then, when following, the
current file is polled as it grows (every ``interval``, 0.1 s: a stat and a read, nothing
when nothing changes), and a rotation (another file at the path) is survived: the old file
is read to its end, files rotated in between are read, then the new one is followed.

Filters are dockerd's, in its order: ``tail`` keeps the last N lines of the files (all
when negative; none when 0, though a follow still shows what comes next); then ``since``
skips lines older than it until the first that is not (later lines are not checked again:
times need not be monotonic), and ``until`` ends the reading at the first line newer.

A line that is not whole (no newline yet: a writer killed mid-write, or one being
written) or not JSON is skipped, never fatal; while following, an incomplete last line
is read again once it is complete.
"""

import json
import os
import time
from typing import Callable, Iterator, List, Optional

from rootless.runtime.logtime import line_time_ns

BLOCK = 1 << 20
EMIT, SKIP, STOP = 0, 1, 2


class Entry:
    """One line of the log: ``log`` is the text, newline included unless it is a partial."""

    __slots__ = ("stream", "log", "time", "attrs")

    def __init__(self, stream: str, log: str, time: str, attrs: Optional[dict]):
        self.stream, self.log, self.time, self.attrs = stream, log, time, attrs

    def __repr__(self):
        return "Entry(%r, %r, %r)" % (self.stream, self.log, self.time)


def parse_line(line: bytes) -> Optional[Entry]:
    try:
        d = json.loads(line)
    except ValueError:
        return None
    if not isinstance(d, dict) or not isinstance(d.get("time"), str):
        return None
    attrs = d.get("attrs")
    return Entry(str(d.get("stream") or ""), str(d.get("log") or ""), d["time"],
                 attrs if isinstance(attrs, dict) and attrs else None)


class Window:
    """dockerd's since/until forwarder, in nanoseconds (None: unbounded)."""

    def __init__(self, since: Optional[int] = None, until: Optional[int] = None):
        self.since, self.until = since, until

    def verdict(self, entry: Entry) -> int:
        if self.since is None and self.until is None:
            return EMIT
        ns = line_time_ns(entry.time)
        if ns is None:
            return SKIP
        if self.since is not None:
            if ns < self.since:
                return SKIP
            self.since = None  # found the first line at or after since: no more checks
        if self.until is not None and ns > self.until:
            return STOP
        return EMIT


def rotated_files(path: str) -> List[str]:
    """``path.N[.gz]`` ... ``path.1[.gz]``, oldest first; ``.N`` before ``.N.gz`` when a
    compression is under way (the plain file goes only once the .gz is whole)."""
    directory, base = os.path.split(path)
    found = {}
    try:
        names = os.listdir(directory or ".")
    except FileNotFoundError:
        return []
    for name in names:
        if not name.startswith(base + "."):
            continue
        suffix = name[len(base) + 1:]
        number = suffix[:-3] if suffix.endswith(".gz") else suffix
        if number.isdigit() and number.isascii() and (number not in found or not suffix.endswith(".gz")):
            found[number] = os.path.join(directory, name)
    return [found[n] for n in sorted(found, key=int, reverse=True)]


# -- sources: a range of whole lines of one file ------------------------------------------

class _Plain:
    """The whole lines of ``fd`` between ``start`` and ``end``."""

    def __init__(self, fd: int, start: int, end: int):
        self.fd, self.start, self.end = fd, start, end

    def tail(self, n: int) -> int:
        """Keep only the last ``n`` lines; how many there are (at most n)."""
        count, pos = 0, self.end
        while pos > self.start:
            lo = max(self.start, pos - BLOCK)
            block = os.pread(self.fd, pos - lo, lo)
            hi = len(block) - 1 if pos == self.end else len(block)  # not the last newline
            while True:
                i = block.rfind(b"\n", 0, hi)
                if i < 0:
                    break
                count += 1
                if count == n:
                    self.start = lo + i + 1
                    return n
                hi = i
            pos = lo
        return count + (self.end > self.start)

    def lines(self) -> Iterator[bytes]:
        pos, rest = self.start, b""
        while pos < self.end:
            block = os.pread(self.fd, min(BLOCK, self.end - pos), pos)
            if not block:
                break
            pos += len(block)
            chunk = rest + block if rest else block
            last = chunk.rfind(b"\n")
            if last < 0:
                rest = chunk
                continue
            yield from chunk[:last].split(b"\n")
            rest = chunk[last + 1:]


class _Lines:
    """Lines already in memory (a decompressed rotated file)."""

    def __init__(self, lines: List[bytes]):
        self.all = lines

    def tail(self, n: int) -> int:
        self.all = self.all[-n:]
        return len(self.all)

    def lines(self) -> Iterator[bytes]:
        return iter(self.all)


def _whole_end(fd: int, size: int) -> int:
    """Where the last whole line of the first ``size`` bytes ends."""
    pos = size
    while pos > 0:
        lo = max(0, pos - BLOCK)
        i = os.pread(fd, pos - lo, lo).rfind(b"\n")
        if i >= 0:
            return lo + i + 1
        pos = lo
    return 0


def _open_source(path: str, fds: list, skip_ino) -> Optional[object]:
    if path.endswith(".gz"):
        import gzip
        try:
            with gzip.open(path, "rb") as f:
                data = f.read()
        except (OSError, EOFError):
            return None  # gone (rotated away) or being written
        end = data.rfind(b"\n")
        return _Lines(data[:end].split(b"\n") if end >= 0 else [])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    fds.append(fd)
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) == skip_ino:
        return None  # the current file, rotated while we listed
    return _Plain(fd, 0, _whole_end(fd, st.st_size))


# -- reading ------------------------------------------------------------------------------

def read(path: str, tail: int = -1, since: Optional[int] = None, until: Optional[int] = None,
         follow: bool = False, still_running: Optional[Callable[[], bool]] = None,
         interval: float = 0.1, idle: Optional[Callable[[], None]] = None) -> Iterator[Entry]:
    """The log's entries, filtered as ``docker logs`` does; with ``follow``, until
    ``still_running()`` says False and all is read (``idle()`` is called before each wait)."""
    fds: list = []
    window = Window(since, until)
    try:
        try:
            current = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            fds.append(current)
            st = os.fstat(current)
            ident, end = (st.st_dev, st.st_ino), _whole_end(current, st.st_size)
        except FileNotFoundError:
            current, ident, end = None, None, 0
        sources = [s for s in (_open_source(p, fds, ident) for p in rotated_files(path)) if s]
        if current is not None:
            sources.append(_Plain(current, 0, end))
        for source in _tailed(sources, tail):
            for entry in _entries(source.lines(), window):
                if entry is None:
                    return
                yield entry
        if follow:
            yield from _Follower(path, window, still_running or (lambda: False), interval, idle) \
                .run(current, end, fds)
    finally:
        for fd in fds:
            os.close(fd)


def _tailed(sources: list, tail: int) -> list:
    if tail < 0:
        return sources
    if tail == 0:
        return []
    need = tail
    for i in range(len(sources) - 1, -1, -1):
        need -= sources[i].tail(need)
        if need <= 0:
            return sources[i:]
    return sources


def _entries(lines, window: Window) -> Iterator[Optional[Entry]]:
    """Entries of whole lines that pass the window; None once it says stop."""
    for line in lines:
        entry = parse_line(line)
        if entry is None:
            continue
        verdict = window.verdict(entry)
        if verdict == STOP:
            yield None
            return
        if verdict == EMIT:
            yield entry


class _Follower:
    """Polls the current file for lines appended after those already read."""

    def __init__(self, path, window, still_running, interval, idle):
        self.path, self.window, self.still_running = path, window, still_running
        self.interval, self.idle = interval, idle

    def run(self, fd: Optional[int], pos: int, fds: list) -> Iterator[Entry]:
        stopping = False
        while True:
            if fd is not None:
                pos, stop = yield from self._drain(fd, pos)
                if stop:
                    return
            new = self._replaced(fd, fds)
            if new is not None:
                if fd is not None:
                    # What reached the old file after our read and before the rename.
                    pos, stop = yield from self._drain(fd, pos)
                    if stop:
                        return
                    for source in self._between(fd, new, fds):
                        for entry in _entries(source.lines(), self.window):
                            if entry is None:
                                return
                            yield entry
                fd, pos = new, 0
                continue
            if stopping:
                return
            if not self.still_running():
                stopping = True  # one more pass, for what came before it stopped
                continue
            if self.idle:
                self.idle()
            time.sleep(self.interval)

    def _drain(self, fd: int, pos: int):
        """Yields the entries of the whole lines from ``pos`` on; returns (the offset after
        the last whole line, whether the window said stop)."""
        while True:
            block = os.pread(fd, BLOCK, pos)
            last = block.rfind(b"\n")
            if last < 0:
                return pos, False  # nothing, or a line not yet whole: read again later
            pos += last + 1
            for entry in _entries(block[:last].split(b"\n"), self.window):
                if entry is None:
                    return pos, True
                yield entry

    def _replaced(self, fd: Optional[int], fds: list) -> Optional[int]:
        """An fd of the file now at the path if it is not ``fd``'s file, else None."""
        try:
            new = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None  # between an unlink and a create (max-file 1), or removed
        if fd is not None and _ident(new) == _ident(fd):
            os.close(new)
            return None
        fds.append(new)
        return new

    def _between(self, old: int, new: int, fds: list) -> list:
        """Files rotated after ``old`` and before ``new`` (more than one rotation between
        two polls), oldest first: those newer than where ``old`` now is. None are known
        when ``old`` was removed (max-file 1) or compressed."""
        found = []
        skip = (_ident(old), _ident(new))
        for path in reversed(rotated_files(self.path)):  # .1 (newest) first
            if path.endswith(".gz"):
                return []
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) == skip[0]:
                break
            found.append(path)
        else:
            return []
        sources = [_open_source(p, fds, skip[1]) for p in reversed(found)]
        return [s for s in sources if s]


def _ident(fd: int):
    st = os.fstat(fd)
    return st.st_dev, st.st_ino
