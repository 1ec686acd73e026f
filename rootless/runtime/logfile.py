"""A container's output as Docker's json-file log: ``<dir>/<id>-json.log``, one JSON object
a line, written by the monitor of a detached container (``logread`` reads it back).

A line in the file is exactly what dockerd writes::

    {"log":"hello\\n","stream":"stdout","time":"2026-12-02T01:52:24.12345678Z"}

- ``log`` is the line with its newline, escaped as Docker's encoder does (not as Python's
  ``json``): ``\\n``, ``\\r``, ``\\"`` and ``\\\\`` are short escapes; every other control
  character, ``<``, ``>``, ``&``, U+2028 and U+2029 are ``\\u00XX``/``\\u202X``; other
  UTF-8 is kept as it is; each byte that is not part of valid UTF-8 becomes ``\\ufffd``.
- ``time`` is Go's RFC3339Nano in UTC: trailing zeros of the fraction are dropped, and a
  whole second has no fraction at all (``...:24Z``).
- ``attrs`` (between ``stream`` and ``time``, only when there are some) are the
  ``--log-opt labels/env/tag`` attributes.

Lines are split as Docker's copier does: a line that reaches 16 KiB without a newline is
written in 16 KiB pieces whose ``log`` has no ``\\n``; every piece of one line and its
last piece carry the time of the first piece. What is left without a newline when a
stream ends (``eof``/``close``) is written the same way, without ``\\n``.

Rotation is Docker's: before an entry is written, if the current file has reached
``max_size`` it becomes ``.1`` (``.1`` becomes ``.2`` ... the oldest beyond ``max_file - 1``
is removed; with ``max_file == 1`` the file is just started again), so a file may pass
``max_size`` by one entry. ``compress`` gzips ``.1`` at once (dockerd does it in the
background; here the writer waits, which only delays reading the container's pipes; the
gzip header lacks dockerd's ``lastTime`` hint, which its reader does without).

A full disk never raises out of ``write``: a failed write is cut back to the last whole
entry (a reader never meets a torn line), the first error is kept in ``error`` (naming
the file), ``lost_lines``/``lost_bytes`` count what was dropped, and the next write tries
again.

Cost, measured here: ~2 us a 90-byte line (json.dumps and datetime per line: 3 to 5 times
that), the time formatted once a chunk; importing the module ~1 ms from the zipapp, its
imports (os, time, json.encoder) being what a monitor has loaded anyway.
"""

import errno
import os
import time
from json.encoder import encode_basestring

# Docker's copier reads into a 16 KiB buffer and logs it as a partial line when it fills
# without a newline (daemon/logger/copier.go, defaultBufSize).
PARTIAL_SIZE = 16 * 1024

# Characters Docker escapes where Python's encoder does not (or differently). Before
# encoding they become lone surrogates (never present in strictly decoded UTF-8, nor in
# the U+DC80..U+DCFF range surrogateescape uses), which encode_basestring keeps as they
# are; afterwards they become Docker's escapes.
_MARK = {"\t": "\ud800", "\b": "\ud801", "\f": "\ud802", "<": "\ud803", ">": "\ud804",
         "&": "\ud805", "\u2028": "\ud806", "\u2029": "\ud807"}
_TO_MARK = str.maketrans(_MARK)
_FROM_MARK = {ord(m): "\\u%04x" % ord(c) for c, m in _MARK.items()}
_FROM_MARK.update({0xDC80 + b: "\\ufffd" for b in range(128)})
_TO_HTML = str.maketrans({c: m for c, m in _MARK.items() if c not in "\t\b\f"})


def encode_log(line: bytes) -> str:
    """``line`` (bytes from the container) as Docker's JSON string, quotes included."""
    try:
        text = line.decode("utf-8")
        invalid = False
    except UnicodeDecodeError:
        # surrogateescape turns each byte that is not valid UTF-8 into one surrogate: one
        # U+FFFD per byte, as Go's decoder yields (its RuneError always has size 1).
        text = line.decode("utf-8", "surrogateescape")
        invalid = True
    special = _special(text)
    if special:
        text = text.translate(_TO_MARK)
    quoted = encode_basestring(text)
    if special or invalid:
        quoted = quoted.translate(_FROM_MARK)
    return quoted


def _special(text: str) -> bool:
    """Whether ``text`` has a character Docker escapes and Python does not (a few
    substring scans: several times cheaper than translating every line)."""
    if "\t" in text or "<" in text or ">" in text or "&" in text or "\b" in text or "\f" in text:
        return True
    return not text.isascii() and ("\u2028" in text or "\u2029" in text)


def go_json_string(text: str) -> str:
    """A string as Go's encoding/json writes it (for attrs): Python's short escapes (Go's
    since 1.22, \\b and \\f included), HTML characters and U+2028/9 as \\u escapes."""
    if _special(text):
        return encode_basestring(text.translate(_TO_HTML)).translate(_FROM_MARK)
    return encode_basestring(text)


def format_time(ns: int) -> bytes:
    """Nanoseconds since the epoch as Go's time.RFC3339Nano in UTC."""
    sec, frac = divmod(ns, 1000000000)
    return _seconds(sec) + _fraction(frac) + b"Z"


def _seconds(sec: int) -> bytes:
    return b"%04d-%02d-%02dT%02d:%02d:%02d" % time.gmtime(sec)[:6]


def _fraction(frac: int) -> bytes:
    return (b".%09d" % frac).rstrip(b"0") if frac else b""


def _json_object(attrs: dict) -> bytes:
    """A map[string]string as Go's json.Marshal writes it: keys sorted (UTF-8 byte order
    is code point order), no spaces."""
    return ("{%s}" % ",".join("%s:%s" % (go_json_string(k), go_json_string(attrs[k]))
                              for k in sorted(attrs))).encode()


class _Stream:
    """What one stream (stdout, stderr) has pending: bytes after its last newline, and the
    time of the first piece of a long line whose pieces are being written."""

    __slots__ = ("key", "pending", "partial_ns")

    def __init__(self, name: str):
        self.key = b',"stream":' + encode_log(name.encode()).encode()
        self.pending = b""
        self.partial_ns = None


class Writer:
    """Appends a container's output to ``path`` in Docker's json-file format.

    For a monitor: ``writer_for(path, record.get("log"), attrs)``; ``write(stream, chunk)``
    for each read of a pipe; ``eof(stream)`` when a pipe ends; ``close()`` once both
    have, *before* the record says the container exited (``logs -f`` stops on that, and
    must find every line written). ``error``/``lost_lines``/``lost_bytes`` say what a
    full disk cost. One thread writes (as a poll loop does): there is no lock.
    """

    def __init__(self, path: str, max_size=None, max_file: int = 1, compress: bool = False,
                 attrs=None, mode: int = 0o640):
        self.path, self.max_size, self.max_file = path, max_size, max_file
        self.compress, self.mode = compress, mode
        self.error = None  # the first failure, as a message naming the file
        self.lost_lines = 0
        self.lost_bytes = 0
        self._attrs = b',"attrs":' + _json_object(attrs) if attrs else b""
        self._streams = {}
        self._fd = None
        self._size = 0
        self._torn = False  # a torn entry could not be cut off: start the next on a new line
        self._second = (None, b"")
        self._open(truncate=False)

    # -- lines -----------------------------------------------------------------------

    def write(self, stream: str, data: bytes, now_ns=None) -> None:
        """Log a chunk read from the container's ``stream`` ("stdout" or "stderr")."""
        if not data:
            return
        now = time.time_ns() if now_ns is None else now_ns
        st = self._stream(stream)
        buf = st.pending + data if st.pending else data
        entries, start = [], 0
        suffix = self._suffix(st, now)  # every whole line of a chunk has the chunk's time
        while True:
            newline = buf.find(b"\n", start)
            end = len(buf) if newline < 0 else newline
            while end - start >= PARTIAL_SIZE:
                entries.append(self._piece(st, buf[start:start + PARTIAL_SIZE], now))
                start += PARTIAL_SIZE
            if newline < 0:
                break
            if st.partial_ns is None:
                entries.append(b'{"log":' + encode_log(buf[start:newline])[:-1].encode() + b'\\n"' + suffix)
            else:
                entries.append(self._last(st, buf[start:newline]))
            start = newline + 1
        st.pending = buf[start:]
        self._append(entries)

    def eof(self, stream: str, now_ns=None) -> None:
        """The stream has ended: what it left without a newline is logged, as a partial."""
        st = self._streams.get(stream)
        if st is not None and st.pending:
            entry = self._piece(st, st.pending, time.time_ns() if now_ns is None else now_ns)
            st.pending, st.partial_ns = b"", None
            self._append([entry])

    def close(self) -> None:
        for name in list(self._streams):
            self.eof(name)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _stream(self, name: str) -> _Stream:
        st = self._streams.get(name)
        if st is None:
            st = self._streams[name] = _Stream(name)
        return st

    def _piece(self, st: _Stream, chunk: bytes, now: int) -> bytes:
        """A piece of a long line, or what a stream left at its end: no newline added."""
        if st.partial_ns is None:
            st.partial_ns = now
        return b'{"log":' + encode_log(chunk).encode() + self._suffix(st, st.partial_ns)

    def _last(self, st: _Stream, line: bytes) -> bytes:
        """The end of a line written in pieces, with the time of its first piece."""
        suffix = self._suffix(st, st.partial_ns)
        st.partial_ns = None
        return b'{"log":' + encode_log(line)[:-1].encode() + b'\\n"' + suffix

    def _suffix(self, st: _Stream, ns: int) -> bytes:
        """What follows ``log`` in an entry: stream, attrs, time (formatted once a second,
        and once a chunk)."""
        sec, frac = divmod(ns, 1000000000)
        if self._second[0] != sec:
            self._second = (sec, _seconds(sec))
        return b"".join((st.key, self._attrs, b',"time":"', self._second[1], _fraction(frac), b'Z"}\n'))

    # -- the file --------------------------------------------------------------------

    def _append(self, entries) -> None:
        """Write entries in as few writes as rotation allows (Docker checks the size
        before each entry)."""
        batch, size = [], 0
        for entry in entries:
            if self.max_size is not None and self._size + size >= self.max_size:
                self._flush(batch)
                batch, size = [], 0
                self._rotate()
            batch.append(entry)
            size += len(entry)
        self._flush(batch)

    def _flush(self, batch) -> None:
        if not batch:
            return
        if self._fd is None and not self._open(truncate=False):
            self._lose(batch)
            return
        if self._torn:
            batch = [b"\n"] + batch
        data = memoryview(b"".join(batch))
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, data[done:])
            self._torn = False
        except OSError as e:
            self._failed(e, batch, done)
            return
        self._size += done

    def _failed(self, err: OSError, batch, done: int) -> None:
        """Keep the entries written whole, cut off a torn one, count the rest as lost."""
        kept = 0
        for i, entry in enumerate(batch):
            if kept + len(entry) > done:
                self._lose(batch[i:], err)
                break
            kept += len(entry)
        if kept < done:
            try:
                os.ftruncate(self._fd, self._size + kept)
            except OSError:
                self._torn = True
        try:
            self._size = os.fstat(self._fd).st_size
        except OSError:
            self._size += kept

    def _lose(self, entries, err=None) -> None:
        entries = [e for e in entries if e != b"\n"]
        self.lost_lines += len(entries)
        self.lost_bytes += sum(len(e) for e in entries)
        if err is not None:
            self._note(err)

    def _note(self, err: OSError) -> None:
        if self.error is None:
            self.error = "cannot write the log %s: %s" % (getattr(err, "filename", None) or self.path,
                                                         err.strerror or err)

    def _open(self, truncate: bool) -> bool:
        # Read-write: a torn last entry left by a writer that died must be found and cut.
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if truncate else 0)
        try:
            self._fd = os.open(self.path, flags, self.mode)
            self._size = os.fstat(self._fd).st_size
        except OSError as e:
            self._note(e)
            return False
        if self._size:
            try:
                self._cut_torn_tail()
            except OSError:
                self._torn = True
        return True

    def _cut_torn_tail(self) -> None:
        """A file left by a writer that died mid-entry ends without a newline: cut the
        torn entry off, so that the next one does not run into it."""
        end = self._size
        if os.pread(self._fd, 1, end - 1) == b"\n":
            return
        while end > 0:
            start = max(0, end - 65536)
            block = os.pread(self._fd, end - start, start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        os.ftruncate(self._fd, end)
        self._size = end

    def _rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            if self.max_file < 2:
                _unlink(self.path)
            else:
                self._shift()
                os.rename(self.path, self.path + ".1")
        except OSError as e:
            self._note(e)  # as dockerd: the current file is started again regardless
        self._open(truncate=True)
        if self.compress and self.max_file >= 2:
            self._gzip(self.path + ".1")

    def _shift(self) -> None:
        ext = ".gz" if self.compress else ""
        _unlink("%s.%d%s" % (self.path, self.max_file - 1, ext))
        for i in range(self.max_file - 1, 1, -1):
            try:
                os.rename("%s.%d%s" % (self.path, i - 1, ext), "%s.%d%s" % (self.path, i, ext))
            except FileNotFoundError:
                pass

    def _gzip(self, src: str) -> None:
        """``src`` -> ``src.gz``; ``src`` is removed only once the copy is whole, so a
        reader finds one of the two complete (it tries ``src`` first, as Docker's)."""
        import gzip
        dst = src + ".gz"
        try:
            with open(src, "rb") as fin, open(dst, "wb") as raw:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
                    for block in iter(lambda: fin.read(1 << 20), b""):
                        out.write(block)
            os.unlink(src)
        except OSError as e:
            _unlink(dst)
            self._note(e)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise


def writer_for(path: str, log=None, attrs=None) -> Writer:
    """The Writer a container record's ``log`` dict (from parse_log_opts) asks for."""
    log = log or {}
    return Writer(path, max_size=log.get("max_size"), max_file=log.get("max_file", 1),
                  compress=bool(log.get("compress")), attrs=attrs)


def parse_log_opts(driver, opts):
    """See rootless.runtime.logopts (kept apart so that the monitor does not load it)."""
    from rootless.runtime import logopts
    return logopts.parse_log_opts(driver, opts)
