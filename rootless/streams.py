"""Readers that hash, count, bound and decompress byte streams in one pass.

A layer blob flows: file -> HashingReader (blob digest) -> decompressor -> HashingReader
(diff_id, size limit) -> tar unpack. Nothing is read twice and nothing is held whole.
"""

from __future__ import annotations

import io

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Optional

from rootless.errors import SizeLimitExceeded, Unsupported
from rootless.units import human_size  # noqa: F401  (re-exported: its callers import it from here)

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


class Reader(io.RawIOBase):
    """Base of our pass-through readers: subclasses define ``read``; this supplies the
    rest of the raw-stream protocol, so io.BufferedReader and tarfile accept them."""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class HashingReader(Reader):
    """Pass reads through, hashing (sha256) and counting them; refuse past ``limit``.

    With ``sink``, everything read is also written there (the blob's copy in the store).
    """

    def __init__(self, raw, limit: Optional[int] = None, what: str = "stream", sink=None,
                 hashing: bool = True):
        self.raw, self.limit, self.what, self.sink = raw, limit, what, sink
        import hashlib  # here, not at the top: `images` and `ps` never hash
        self.hash = hashlib.sha256() if hashing else None
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.count += len(data)
            if self.limit is not None and self.count > self.limit:
                raise SizeLimitExceeded(
                    "%s unpacks to more than %s; refusing it (a decompression bomb guard: "
                    "raise --max-layer-size or ROOTLESS_MAX_LAYER_SIZE if the image is genuine)"
                    % (self.what, human_size(self.limit)))
            if self.hash is not None:
                self.hash.update(data)
            if self.sink is not None:
                self.sink.write(data)
        return data

    def drain(self) -> None:
        """Read to the end (tar's trailing zero blocks count toward the digest)."""
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class BlobSink:
    """Hashes (and, given a path, writes) a blob in a thread of its own, so that the thread reading the
    stream (and unpacking it) does not wait for either. hashlib and file writes release
    the GIL, so on two cores this overlaps for real."""

    def __init__(self, path: Optional[str]):
        import queue
        import threading
        import hashlib
        self._file = open(path, "wb") if path else None
        self._hash = hashlib.sha256()
        self._queue = queue.Queue(maxsize=64)
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="blob-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            if self._error is None:
                try:
                    self._hash.update(data)
                    if self._file is not None:
                        self._file.write(data)
                except BaseException as e:  # reported to the writer on its next call
                    self._error = e

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._file is not None:
            self._file.close()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "BlobSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class Window(io.RawIOBase):
    """``size`` bytes of an open file from ``offset`` on, as a seekable raw stream of their own.

    Reads use pread, so the descriptor's own position is never used and several windows
    (and a RegionHasher) can share one descriptor. With ``wait`` (``Growing.wait``), the
    file is still being written: a read first waits for the bytes it asks for, and ``size``
    is only a bound."""

    def __init__(self, fd: int, offset: int, size: int, wait=None):
        super().__init__()
        self.fd, self.offset, self.size, self.pos = fd, offset, size, 0
        self.wait = wait

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        import os
        n = min(len(b), self.size - self.pos)
        if n > 0 and self.wait is not None:
            start = self.offset + self.pos
            n = self.wait(start + n) - start
        if n <= 0:
            return 0
        got = os.preadv(self.fd, [memoryview(b)[:n]], self.offset + self.pos)
        self.pos += got
        return got

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        if base + pos < 0:
            raise ValueError("negative seek position")
        self.pos = base + pos
        return self.pos

    def tell(self) -> int:
        return self.pos


class RegionHasher:
    """The sha256 of ``size`` bytes of a file from ``offset``, computed in a thread of its
    own (pread and hashlib release the GIL, so on two cores it costs the caller nothing)."""

    def __init__(self, fd: int, offset: int, size: int):
        import hashlib
        import threading
        self._args = (fd, offset, size)
        self._hash = hashlib.sha256()
        self._stop = False
        self.count = 0
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="region-hasher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import os
        fd, offset, size = self._args
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        try:
            while self.count < size and not self._stop:
                n = os.preadv(fd, [view[:min(len(buf), size - self.count)]], offset + self.count)
                if n == 0:
                    break
                self._hash.update(view[:n])
                self.count += n
        except BaseException as e:  # re-raised by digest()
            self._error = e

    def stop(self) -> None:
        self._stop = True
        self._thread.join()

    def digest(self) -> str:
        """Wait for the whole region; a file that ended early is reported as truncated."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self.count != self._args[2]:
            from rootless.errors import InvalidImage
            raise InvalidImage("archive is truncated (a layer ends %d bytes early)"
                               % (self._args[2] - self.count))
        return "sha256:" + self._hash.hexdigest()


class Growing:
    """A file that another thread is still writing, for a reader that follows it.

    The writer reports every write with ``grew`` and its end with ``finish``: the digest
    (``sha256:...``) of all it wrote, which it gives only once it has checked its own input (a download against
    its digest), or the error that stopped it. ``fd`` is the reader's own descriptor, opened
    when the file is created, so the writer may rename the file meanwhile."""

    def __init__(self, path: str):
        import os
        import threading
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.length = 0
        self._cond = threading.Condition()
        self._done = False
        self._digest: Optional[str] = None
        self._error: Optional[BaseException] = None

    def grew(self, n: int) -> None:
        with self._cond:
            self.length += n
            self._cond.notify_all()

    def finish(self, digest: Optional[str] = None, error: Optional[BaseException] = None) -> None:
        with self._cond:
            self._done, self._digest, self._error = True, digest, error
            self._cond.notify_all()

    def wait(self, end: int) -> int:
        """Block until the file holds ``end`` bytes or the writer is done; how many it holds
        up to ``end``. The writer's error, once it has one, is raised here."""
        with self._cond:
            while self.length < end and not self._done:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            return min(end, self.length)

    def result(self) -> "tuple[str, int]":
        """(sha256 digest, size) of the whole file, once the writer is done."""
        with self._cond:
            while not self._done:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            return self._digest, self.length

    def close(self) -> None:
        import os
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def sniff(head: bytes) -> str:
    """The compression of a layer from its first bytes: gzip, zstd, or "" (plain tar)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return ""


def decompressing(raw, compression: str):
    """A reader of ``raw`` decompressed as ``compression`` (from ``sniff``).

    Damaged or truncated compressed data raises InvalidImage, never a bare EOFError.
    """
    if compression == "":
        return raw
    inner, errors = _decompressor(raw, compression)
    return _Checked(inner, compression, errors)


class _Checked(Reader):
    """Turns a decompressor's own errors into InvalidImage."""

    def __init__(self, inner, compression: str, errors: tuple):
        self.inner, self.compression, self.errors = inner, compression, errors

    def read(self, n: int = -1) -> bytes:
        try:
            return self.inner.read(n)
        except self.errors as e:
            from rootless.errors import InvalidImage
            raise InvalidImage("%s data is damaged or truncated (%s)" % (self.compression, e))

    def close(self) -> None:
        self.inner.close()
        super().close()


def _decompressor(raw, compression: str):
    """(reader, the exceptions that mean "damaged data") for one compression."""
    if compression == "gzip":
        import gzip
        import zlib
        return gzip.GzipFile(fileobj=raw, mode="rb"), (EOFError, zlib.error, gzip.BadGzipFile)
    if compression == "zstd":
        try:
            from compression import zstd  # novermin (Python >= 3.14 only; guarded)
        except ImportError:
            raise Unsupported("this layer is zstd-compressed and this Python has no zstd "
                              "module (it arrived in 3.14); run rootless with Python 3.14+ "
                              "or use an image with gzip layers")
        return zstd.ZstdFile(raw, mode="rb"), (EOFError, zstd.ZstdError)
    if compression == "bzip2":
        import bz2
        return bz2.BZ2File(raw, mode="rb"), (EOFError, OSError)  # bz2 reports bad data as OSError
    if compression == "xz":
        import lzma
        return lzma.LZMAFile(raw, mode="rb"), (EOFError, lzma.LZMAError)
    raise Unsupported("unknown compression %r" % compression)


class PeekReader(Reader):
    """A reader that lets us look at the first bytes of a non-seekable stream."""

    def __init__(self, raw, size: int = 8):
        self.raw = raw
        self.head = _read_fully(raw, size)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        if self._pos < len(self.head):
            if n is None or n < 0:
                data = self.head[self._pos:] + self.raw.read()
                self._pos = len(self.head)
                return data
            data = self.head[self._pos:self._pos + n]
            self._pos += len(data)
            return data
        return self.raw.read(n)


def _read_fully(raw, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = raw.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def parse_size(text: str) -> int:
    """``10g``, ``512m``, ``2GiB``, ``1000000`` -> bytes (binary multiples, as Docker's --memory)."""
    from rootless.errors import UsageError
    t = text.strip().lower()
    for suffix in ("ib", "b"):
        if t.endswith(suffix) and len(t) > len(suffix):
            t = t[: -len(suffix)]
            break
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    factor = 1
    if t and t[-1] in mult:
        t, factor = t[:-1], mult[t[-1]]
    try:
        value = float(t)
        size = int(value * factor)
    except (ValueError, OverflowError):
        size = -1
    if size < 0 or value != value:
        raise UsageError("invalid size %r: use a non-negative number with an optional k, m, g or t "
                         "suffix" % text)
    return size
