"""Reading a json-file log back, as dockerd's json-file reader does (``docker logs``).

The files are read oldest first: ``ID-json.log.N`` (or ``.N.gz``) ... ``.1``, then the
current ``ID-json.log`` up to its size when reading began. Then, when following, the
current file is polled as it grows (every ``interval``, 0.1 s: a read, an open of the path
to compare identities, ``still_running()``; ~2 ms of CPU a second when idle), and a
rotation (another file at the path) is survived: the old file is read to its end, files
rotated in between are read (found by the old file's identity), then the new one is
followed. Only a writer that rotates ``max-file - 1`` times between two polls (twice, with
``compress``: a gzipped file has a new identity) outruns it.

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
from json.decoder import scanstring
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
    """One line of the file -> an Entry, None if it is not one. Lines as dockerd and our
    Writer write them (log, stream, time, in that order, no attrs) take a short cut that
    decodes only the log string: about three times faster than json.loads."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:  # a damaged file: one U+FFFD a bad byte, as Go's decoder
        text = line.decode("utf-8", "surrogateescape").translate(_BAD_BYTES)
    if text.startswith('{"log":"') and text.endswith('"}'):
        try:
            log, end = scanstring(text, 8)
        except ValueError:
            return None
        for stream, middle in _MIDDLES:
            if text.startswith(middle, end):
                when = text[end + len(middle):-2]
                if '"' not in when and "\\" not in when:
                    return Entry(stream, log, when, None)
    return _parse_json(text)


_BAD_BYTES = {0xDC80 + b: "\ufffd" for b in range(128)}
_MIDDLES = [(name, ',"stream":"%s","time":"' % name) for name in ("stdout", "stderr")]


def _parse_json(text: str) -> Optional[Entry]:
    try:
        d = json.loads(text)
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


# -- sources: the whole lines of one file ------------------------------------------------

def _split(blocks) -> Iterator[bytes]:
    """The lines of a stream of blocks, without a last line that has no newline."""
    rest = b""
    for block in blocks:
        chunk = rest + block if rest else block
        last = chunk.rfind(b"\n")
        if last < 0:
            rest = chunk
            continue
        yield from chunk[:last].split(b"\n")
        rest = chunk[last + 1:]


class _Plain:
    """The whole lines of ``fd`` between ``start`` and ``end`` (closed with the source
    when ``owned``)."""

    def __init__(self, fd: int, start: int, end: int, owned: bool = True):
        self.fd, self.start, self.end, self.owned = fd, start, end, owned

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
        return _split(self._blocks())

    def _blocks(self):
        pos = self.start
        while pos < self.end:
            block = os.pread(self.fd, min(BLOCK, self.end - pos), pos)
            if not block:
                return
            pos += len(block)
            yield block

    def close(self) -> None:
        if self.owned:
            os.close(self.fd)


class _Gz:
    """A compressed rotated file, open from the listing on (the writer may remove it),
    decompressed only if its lines are wanted."""

    def __init__(self, f):
        self.f, self.kept = f, None

    def tail(self, n: int) -> int:
        self.kept = list(self.lines())[-n:]
        return len(self.kept)

    def lines(self) -> Iterator[bytes]:
        if self.kept is not None:
            return iter(self.kept)
        return _split(self._blocks())

    def _blocks(self):
        import gzip
        self.f.seek(0)
        try:
            with gzip.GzipFile(fileobj=self.f, mode="rb") as z:
                yield from iter(lambda: z.read(BLOCK), b"")
        except (OSError, EOFError):
            return  # not a whole gzip file: the writer died compressing it

    def close(self) -> None:
        self.f.close()


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


def _open_source(path: str, skip):
    """A source for a rotated file; None if it is gone or is the file ``skip`` (dev, ino)."""
    try:
        if path.endswith(".gz"):
            return _Gz(open(path, "rb"))
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    if _ident(fd) == skip:
        os.close(fd)
        return None  # the current file, rotated while we listed
    return _Plain(fd, 0, _whole_end(fd, os.fstat(fd).st_size))


def _ident(fd: int):
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


# -- reading ------------------------------------------------------------------------------

def read(path: str, tail: int = -1, since: Optional[int] = None, until: Optional[int] = None,
         follow: bool = False, still_running: Optional[Callable[[], bool]] = None,
         interval: float = 0.1, idle: Optional[Callable[[], None]] = None) -> Iterator[Entry]:
    """The log's entries, filtered as ``docker logs`` does; with ``follow``, until
    ``still_running()`` says False and all is read (``idle()`` is called before each wait)."""
    window = Window(since, until)
    try:
        current = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        end = _whole_end(current, os.fstat(current).st_size)
    except FileNotFoundError:
        current, end = None, 0  # a container that never ran: nothing yet
    follower = _Follower(path, window, still_running or (lambda: False), interval, idle, current)
    try:
        # The current file is opened first, the rotated ones listed after: a rotation in
        # between shows the current file twice (skipped by identity), never zero times.
        skip = _ident(current) if current is not None else None
        sources = [s for s in (_open_source(p, skip) for p in rotated_files(path)) if s]
        if current is not None:
            sources.append(_Plain(current, 0, end, owned=False))
        stopped = yield from _read_all(_tailed(sources, tail), window, sources)
        if follow and not stopped:
            yield from follower.run(end)
    finally:
        follower.close()


def _read_all(sources: list, window: Window, owned: list):
    """Yields the entries of ``sources``; returns whether the window said stop. Every
    source of ``owned`` is closed at the end."""
    try:
        for source in sources:
            for entry in _entries(source.lines(), window):
                if entry is None:
                    return True
                yield entry
        return False
    finally:
        for source in owned:
            source.close()


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
    """Polls the current file (``fd``, which it owns) for lines appended after those
    already read."""

    def __init__(self, path, window, still_running, interval, idle, fd: Optional[int]):
        self.path, self.window, self.still_running = path, window, still_running
        self.interval, self.idle, self.fd = interval, idle, fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def run(self, pos: int) -> Iterator[Entry]:
        stopping = False
        while True:
            if self.fd is not None:
                pos, stop = yield from self._drain(pos)
                if stop:
                    return
            new = self._replaced()
            if new is not None:
                stop = False
                if self.fd is not None:
                    # What reached the old file after our read and before the rename.
                    pos, stop = yield from self._drain(pos)
                    if not stop:
                        between = self._between(new)
                        stop = yield from _read_all(between, self.window, between)
                    self.close()
                self.fd, pos = new, 0
                if stop:
                    return
                continue
            if stopping:
                return
            if not self.still_running():
                stopping = True  # one more pass, for what came before it stopped
                continue
            if self.idle:
                self.idle()
            time.sleep(self.interval)

    def _drain(self, pos: int):
        """Yields the entries of the whole lines from ``pos`` on; returns (the offset after
        the last whole line, whether the window said stop)."""
        while True:
            block = os.pread(self.fd, BLOCK, pos)
            last = block.rfind(b"\n")
            if last < 0:
                return pos, False  # nothing, or a line not yet whole: read again later
            pos += last + 1
            for entry in _entries(block[:last].split(b"\n"), self.window):
                if entry is None:
                    return pos, True
                yield entry

    def _replaced(self) -> Optional[int]:
        """An fd of the file now at the path if it is not our file, else None."""
        try:
            new = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None  # between an unlink and a create (max-file 1), or removed
        if self.fd is not None and _ident(new) == _ident(self.fd):
            os.close(new)
            return None
        return new

    def _between(self, new: int) -> list:
        """Files rotated after ours and before ``new`` (more than one rotation between
        two polls), oldest first: those newer than where ours now is. None are known
        when ours was removed (max-file 1) or compressed."""
        found = []
        ours = _ident(self.fd)
        for path in reversed(rotated_files(self.path)):  # .1 (newest) first
            if path.endswith(".gz"):
                return []
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) == ours:
                break
            found.append(path)
        else:
            return []
        sources = [_open_source(p, _ident(new)) for p in reversed(found)]
        return [s for s in sources if s]
