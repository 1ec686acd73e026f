"""Inflating a gzip layer into a file while it downloads.

A pull writes each gzip layer's uncompressed tar next to the blob, and the unpack reads
that tar as it grows (``streams.Growing``). Inflating is the single largest piece of CPU
work in a pull (about 0.75 s for a 60 MB Debian layer), and the unpack is the second;
they only run side by side on two cores if the inflating does not need this process's
GIL. So the inflating runs in a child process by default: a few lines of stdlib Python
(``_CHILD``) started with ``sys.executable -I -S``, fed through a pipe, writing the tar
itself and reporting how far it got. Where no child can be started (no usable
``sys.executable``), a thread does the same work in-process: slower next to an unpack,
equally correct. A small blob is inflated in a thread too: starting a child would cost
more than it saves. ``ROOTLESS_INFLATE=thread`` or ``=process`` chooses one always (the
tests run both).

Both report the same errors, and only in ``close``: damaged gzip data, data cut short, and
a layer larger than the ``--max-layer-size`` limit (a decompression bomb guard).
"""

import hashlib
import os
import sys
import threading
from typing import Optional

from rootless.errors import InvalidImage, SizeLimitExceeded

# The child's whole program: inflate stdin into the descriptor argv[1], at most argv[2]
# bytes (0: no limit); on stdout, "n SIZE" as the output grows, then one last line:
# "ok SHA256 SIZE", "bad MESSAGE", "short" (truncated) or "big" (over the limit).
# It ignores SIGINT (a ^C reaches the whole process group; the parent decides) and ends
# at the end of its input, so it never outlives the parent's end of the pipe.
_CHILD = r"""# rootless pull: inflating a gzip layer (rootless/image/inflate.py)
import hashlib, os, signal, sys, zlib
signal.signal(signal.SIGINT, signal.SIG_IGN)
out, limit = int(sys.argv[1]), int(sys.argv[2])
def say(line):
    os.write(1, line.encode() + b"\n")
d, h, size, told = zlib.decompressobj(31), hashlib.sha256(), 0, 0
try:
    while True:
        data = os.read(0, 1 << 20)
        if not data:
            break
        while data:
            chunk = d.decompress(data, 1 << 20)
            size += len(chunk)
            if limit and size > limit:
                say("big")
                sys.exit(0)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]
            h.update(chunk)
            data = d.unconsumed_tail
            if d.eof:
                data = d.unused_data
                if data:
                    d = zlib.decompressobj(31)
        if size - told >= 1 << 19:
            say("n %d" % size)
            told = size
except zlib.error as e:
    say("bad %s" % e)
    sys.exit(0)
say("ok %s %d" % (h.hexdigest(), size) if d.eof else "short")
"""

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named there only from Python 3.10


def _too_big() -> SizeLimitExceeded:
    return SizeLimitExceeded("a layer unpacks to more than the --max-layer-size limit; refusing it "
                             "(a decompression bomb guard)")


def _bad(reason) -> InvalidImage:
    return InvalidImage("layer is not valid gzip data (%s)" % reason)


def _truncated() -> InvalidImage:
    return InvalidImage("layer gzip data is truncated")


class GunzipThread:
    """Decompress a (possibly multi-member) gzip stream into a file, bounded by ``limit``.

    ``feed`` hands the data to a thread of its own, so that receiving and hashing (the
    download thread) and inflating (this one) use two cores; the queue is short and each
    inflate call yields at most 1 MiB, so memory stays bounded. The output's sha256 is
    ``digest``, and a ``growing`` (``streams.Growing``) set by the caller hears of every
    write."""

    def __init__(self, path: str, limit: Optional[int]):
        import queue
        import zlib
        self._zlib = zlib
        self.out = open(path, "wb", buffering=0)
        self.limit, self.size = limit, 0
        self._hash = hashlib.sha256()
        self.growing = None
        self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._error: Optional[BaseException] = None
        self._queue: "queue.Queue" = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="gunzip", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            if self._error is None:
                try:
                    self._inflate(data)
                except BaseException as e:  # re-raised by close()
                    self._error = e

    def feed(self, data: bytes) -> None:
        """Queue data; errors (bad gzip, too large) are kept for ``close``."""
        if self._error is None:
            self._queue.put(data)

    def _inflate(self, data: bytes) -> None:
        while data:
            try:
                chunk = self.d.decompress(data, 1 << 20)
            except self._zlib.error as e:
                raise _bad(e)
            self.size += len(chunk)
            if self.limit is not None and self.size > self.limit:
                raise _too_big()
            view = memoryview(chunk)
            while view:
                view = view[self.out.write(view):]
            self._hash.update(chunk)
            if self.growing is not None:
                self.growing.grew(len(chunk))
            data = self.d.unconsumed_tail
            if self.d.eof:
                data = self.d.unused_data
                if data:
                    self.d = self._zlib.decompressobj(16 + self._zlib.MAX_WBITS)

    def abort(self) -> None:
        """End the input: the thread finishes what was queued, and the file is closed."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if not self.out.closed:
            self.out.close()

    def close(self) -> None:
        self.abort()
        if self._error is not None:
            raise self._error
        if not self.d.eof:
            raise _truncated()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class GunzipProcess:
    """``GunzipThread``'s work done by a child process (``_CHILD``); the same interface.

    ``feed`` writes to the child's stdin (a blocking pipe: the download waits for the
    inflating, as it waits for the thread's short queue), and a thread of ours reads the
    child's reports, so ``growing`` hears of the output as it is written."""

    def __init__(self, path: str, limit: Optional[int], exclusive: bool = False):
        import subprocess
        self.size = 0
        self.growing = None
        self._digest: Optional[str] = None
        self._error: Optional[BaseException] = None
        self._broken = False
        self._status = ""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC) | os.O_CLOEXEC, 0o600)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _CHILD, str(fd), str(limit or 0)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(fd,), bufsize=0)
        finally:
            os.close(fd)
        try:
            import fcntl
            fcntl.fcntl(self.proc.stdin.fileno(), F_SETPIPE_SZ, 1 << 20)  # fewer, larger reads
        except OSError:
            pass  # (pipe-max-size lower than 1 MiB: the default 64 KiB works too)
        self._reader = threading.Thread(target=self._read_reports, name="gunzip-reports", daemon=True)
        self._reader.start()

    def _read_reports(self) -> None:
        for line in self.proc.stdout:
            word, _, rest = line.decode("utf-8", "replace").strip().partition(" ")
            if word == "n":
                self._grew(int(rest))
            elif word == "ok":
                digest, size = rest.split()
                self._grew(int(size))
                self._digest = "sha256:" + digest
            elif word == "bad":
                self._error = _bad(rest)
            elif word == "short":
                self._error = _truncated()
            elif word == "big":
                self._error = _too_big()

    def _grew(self, size: int) -> None:
        if size > self.size:
            if self.growing is not None:
                self.growing.grew(size - self.size)
            self.size = size

    def feed(self, data: bytes) -> None:
        if self._broken:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[self.proc.stdin.write(view):]
        except BrokenPipeError:
            self._broken = True  # the child stopped (bad data, or too large): close() says why

    def abort(self) -> None:
        """End the input, and wait for the child to finish with it."""
        if not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        self._reader.join()
        if self.proc.returncode is None:
            self.proc.wait()
            self._status = self.proc.stderr.read().decode("utf-8", "replace").strip()
            self.proc.stdout.close()
            self.proc.stderr.close()

    def close(self) -> None:
        self.abort()
        if self._error is not None:
            raise self._error
        if self._digest is None:
            last = self._status.splitlines()[-1] if self._status else "exit status %s" % self.proc.returncode
            raise InvalidImage("the process inflating a layer (%s) failed: %s" % (sys.executable, last))

    @property
    def digest(self) -> str:
        return self._digest or ""


SMALL = 4 << 20  # compressed bytes: below this a child costs more to start than it saves


def _no_process(say) -> bool:
    """True (and said why) when inflating must stay in this process."""
    if os.environ.get("ROOTLESS_INFLATE") == "thread":
        say("inflating in a thread (ROOTLESS_INFLATE=thread)")
        return True
    if not sys.executable or not os.access(sys.executable, os.X_OK):
        say("inflating in a thread: this Python has no usable sys.executable (%r)" % sys.executable)
        return True
    return False


def open_gunzip(path: str, limit: Optional[int], debug=None, size: Optional[int] = None, spare=None):
    """A ``GunzipProcess`` for ``path`` (the ``spare`` one when there is one left), or a
    ``GunzipThread`` for a small blob (``size``, compressed), where no child can be
    started, or when ``ROOTLESS_INFLATE=thread`` asks for it; ``debug`` hears which, and
    why. ``ROOTLESS_INFLATE=process`` takes a child even for a small blob."""
    say = debug or (lambda msg: None)
    if _no_process(say):
        return GunzipThread(path, limit)
    if os.environ.get("ROOTLESS_INFLATE") != "process" and size is not None and size < SMALL:
        return GunzipThread(path, limit)
    child = spare.take(path) if spare is not None else None
    if child is not None:
        return child
    try:
        return GunzipProcess(path, limit)
    except OSError as e:
        say("inflating in a thread: cannot start %s (%s)" % (sys.executable, e.strerror or e))
        return GunzipThread(path, limit)


class Spare:
    """A ``GunzipProcess`` started before anyone needs it: a pull starts one before asking
    for the manifest, so that the child's start-up (30-70 ms, Python and OpenSSL) overlaps
    the requests instead of delaying the first layer.

    The child writes to a file of its own name in ``directory``; ``take(path)`` renames
    that file to ``path`` (the child's descriptor follows it) and hands the child over,
    once. ``close`` ends a child nobody took and removes its file."""

    def __init__(self, directory: str, limit: Optional[int]):
        self.path = os.path.join(directory, ".inflate-%s.partial" % os.urandom(6).hex())
        self._child: Optional[GunzipProcess] = GunzipProcess(self.path, limit, exclusive=True)
        self._lock = threading.Lock()

    @classmethod
    def start(cls, directory: str, limit: Optional[int], debug=None) -> "Optional[Spare]":
        if _no_process(debug or (lambda msg: None)):
            return None
        try:
            os.makedirs(directory, 0o700, exist_ok=True)
            return cls(directory, limit)
        except OSError:
            return None  # (open_gunzip will try again, and say why it cannot)

    def take(self, path: str) -> Optional[GunzipProcess]:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            os.replace(self.path, path)
        return child

    def close(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.abort()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


__all__ = ["GunzipThread", "GunzipProcess", "Spare", "open_gunzip"]
