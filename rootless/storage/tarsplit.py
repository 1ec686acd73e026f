"""Keep a layer's tar stream reproducible without keeping a second copy of its data.

While a layer is unpacked, every byte of the (uncompressed) tar stream that is *not* the
content of a regular file we wrote to disk (headers, pax records, padding, the end
marker, sparse members) is saved, compressed, in ``tar-split.gz``; ``tar-split.json``
lists, in stream order, how many saved bytes come next and which unpacked file supplies
the following bytes. Reassembly interleaves the two and reproduces the stream byte for
byte, so its sha256 is the layer's diff_id again: ``save`` writes what was loaded without
storing every layer twice (the same idea as containers-storage's tar-split).

Reassembly verifies the digest as it goes; a layer whose files were changed on disk is
reported, never silently saved.
"""

import gzip
import hashlib
import os
from typing import List

from rootless import jsonfast
from rootless.errors import DigestMismatch
from rootless.streams import Reader

RAW_NAME = "tar-split.gz"
INDEX_NAME = "tar-split.json"
CHUNK = 1 << 20


class Recorder(Reader):
    """A reader wrapper below tarfile: passes bytes up and saves the ones to keep.

    The unpacker calls ``exclude(start, size, path)`` just before it copies a member's
    content (``size`` bytes at stream offset ``start``) to ``path``; those bytes are then
    not saved. Offsets are absolute positions in the uncompressed stream. Memory stays
    bounded: saved bytes are flushed as they age (tarfile reads ahead at most a few KiB,
    so anything older than ``KEEP_BACK`` can no longer be excluded).
    """

    KEEP_BACK = 8 << 20  # well above the 1 MiB the unpacker's buffer reads ahead

    def __init__(self, raw, directory: str):
        super().__init__()
        self.raw = raw
        self.count = 0
        self.reproducible = True
        self._directory = directory
        self._pending = bytearray()
        self._pending_start = 0  # stream offset of _pending[0]
        self._skip = 0  # bytes still to come that belong to an excluded range
        self._run = 0  # bytes saved since the last entry
        self._entries: List[list] = []
        self._paths = set()
        self._saved = bytearray()
        self._raw_file = _create(os.path.join(directory, RAW_NAME))
        self._out = gzip.GzipFile(fileobj=self._raw_file, mode="wb", compresslevel=1)

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.count += len(data)
            skipped = min(self._skip, len(data))
            self._skip -= skipped
            self._pending_start += skipped
            self._pending += data[skipped:] if skipped else data
            if len(self._pending) > 2 * self.KEEP_BACK:
                self._save(len(self._pending) - self.KEEP_BACK)
        return data

    def exclude(self, start: int, size: int, path: str) -> None:
        if size <= 0 or not self.reproducible:
            return
        if not self._pending_start <= start <= self._pending_start + len(self._pending) or self._skip:
            self.reproducible = False
            return
        self._save(start - self._pending_start)
        self._entries.append([self._run, path, size])
        self._paths.add(path)
        self._run = 0
        dropped = min(size, len(self._pending))
        del self._pending[:dropped]
        self._pending_start += dropped
        self._skip = size - dropped

    def lost(self, path: str) -> None:
        """A file whose content is recorded by reference was replaced within the layer."""
        if path in self._paths:
            self.reproducible = False

    def _save(self, n: int) -> None:
        if n > 0:
            self._saved += self._pending[:n]
            self._run += n
            del self._pending[:n]
            self._pending_start += n
            if len(self._saved) >= CHUNK:
                self._flush()

    def _flush(self) -> None:
        """Compress saved bytes in large pieces (one gzip write per header was costly)."""
        self._out.write(bytes(self._saved))
        del self._saved[:]

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def finish(self) -> None:
        """Read to the end of the stream and write the index."""
        self.drain()
        self._save(len(self._pending))
        self._flush()
        self._out.close()
        self._raw_file.close()  # (a GzipFile leaves the file it was given open)
        # json.dumps, not json.dump: dump streams through the pure-Python encoder.
        index = jsonfast.dumps({"entries": self._entries, "tail": self._run, "size": self.count},
                           separators=(",", ":"))
        with _create(os.path.join(self._directory, INDEX_NAME)) as f:
            f.write(index.encode())

    def close(self) -> None:
        self._out.close()
        self._raw_file.close()
        super().close()


class RegionRecorder:
    """The same record for a layer that is a seekable region of a file (``size`` bytes of
    ``fd`` from ``offset``): the unpacker copies file contents straight from the file and
    never reads them, so the bytes to keep are taken with pread once the unpack is over.
    ``exclude`` and ``lost`` mean what they mean for ``Recorder``. For a file that is
    still being written, ``size`` is a bound and ``final_size()`` gives the real size
    (waiting for the writer) when the record is finished."""

    def __init__(self, fd: int, offset: int, size: int, directory: str, final_size=None):
        self.fd, self.offset, self.size = fd, offset, size
        self._final_size = final_size
        self.reproducible = True
        self._directory = directory
        self._ranges: List[list] = []
        self._end = 0
        self._paths = set()

    def exclude(self, start: int, size: int, path: str) -> None:
        if size <= 0 or not self.reproducible:
            return
        if start < self._end or start + size > self.size:
            self.reproducible = False
            return
        self._ranges.append([start, size, path])
        self._paths.add(path)
        self._end = start + size

    def lost(self, path: str) -> None:
        if path in self._paths:
            self.reproducible = False

    def finish(self) -> None:
        if self._final_size is not None:
            self.size = self._final_size()
            if self._end > self.size:
                self.reproducible = False  # (the unpack reports the truncation)
        entries, pos = [], 0
        with _create(os.path.join(self._directory, RAW_NAME)) as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as out:
            pending = bytearray()
            for start, size, path in self._ranges + [[self.size, 0, None]]:
                at = pos
                while at < start:
                    data = os.pread(self.fd, min(CHUNK, start - at), self.offset + at)
                    if not data:
                        raise DigestMismatch("the archive changed while it was loaded")
                    pending += data
                    at += len(data)
                    if len(pending) >= CHUNK:
                        out.write(bytes(pending))
                        del pending[:]
                if path is not None:
                    entries.append([start - pos, path, size])
                    pos = start + size
                else:
                    tail = start - pos
            out.write(bytes(pending))
        index = jsonfast.dumps({"entries": entries, "tail": tail, "size": self.size}, separators=(",", ":"))
        with _create(os.path.join(self._directory, INDEX_NAME)) as f:
            f.write(index.encode())

    def close(self) -> None:
        pass


class Reassembled:
    """A reader of a layer's original tar stream, rebuilt from ``directory`` (the layer
    directory holding ``diff/`` and the tar-split files) and checked against ``diff_id``."""

    def __init__(self, directory: str, diff_id: str):
        with open(os.path.join(directory, INDEX_NAME)) as f:
            index = jsonfast.load(f)
        self.size = index["size"]
        self._diff = os.path.join(directory, "diff")
        self._raw = gzip.open(os.path.join(directory, RAW_NAME), "rb")
        self._steps = []
        for run, path, size in index["entries"]:
            self._steps += [("raw", run, None), ("file", size, path)]
        self._steps.append(("raw", index["tail"], None))
        self._steps.reverse()
        self._current = None
        self._left = 0
        self._hash = hashlib.sha256()
        self._diff_id = diff_id
        self._done = False
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, short only at the end (tarfile's copy insists on full reads)."""
        n = self.size if n is None or n < 0 else n
        parts, want = [], n
        while want:
            while self._left == 0:
                if not self._next():
                    self._verify()
                    return b"".join(parts)
            data = self._current.read(min(want, self._left))
            if not data:
                raise DigestMismatch("layer %s: an unpacked file is shorter than recorded; the "
                                     "store was modified: remove the image and load it again"
                                     % self._diff_id)
            self._left -= len(data)
            want -= len(data)
            self._hash.update(data)
            self._pos += len(data)
            parts.append(data)
        if self._pos >= self.size:
            self._verify()  # the last byte is checked before the caller gets it
        return b"".join(parts)

    def _next(self) -> bool:
        if self._current is not None and self._current is not self._raw:
            self._current.close()
        if not self._steps:
            return False
        kind, size, path = self._steps.pop()
        self._left = size
        self._current = self._raw if kind == "raw" else _open_nofollow(os.path.join(self._diff, path))
        return True

    def _verify(self) -> None:
        if not self._done:
            self._done = True
            digest = "sha256:" + self._hash.hexdigest()
            if digest != self._diff_id:
                raise DigestMismatch("layer %s reassembles to %s: its unpacked files were "
                                     "changed; remove the image and load it again"
                                     % (self._diff_id, digest))

    def close(self) -> None:
        if self._current is not None and self._current is not self._raw:
            self._current.close()
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _open_nofollow(path: str):
    """Open an unpacked file for reading, even if its mode (0000, 0200) denies us that."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except PermissionError:
        mode = os.lstat(path).st_mode & 0o7777
        os.chmod(path, mode | 0o400)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        finally:
            os.chmod(path, mode)
    return os.fdopen(fd, "rb")


def _create(path: str):
    """A new file for a record, mode 0600 whatever the umask: the unpack that writes it runs
    with umask 0 (files get their image modes), and a record others could write would let
    them change what ``save`` and ``push`` rebuild (a shared store opens it for reading)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), "wb")
