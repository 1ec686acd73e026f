"""Unpack one image layer (an uncompressed tar stream) safely into an empty directory.

Image layers are hostile input. The rules, in the order they are applied to each member:

* The member name is made relative and normalised; a name that leaves the layer root
  (``..``) refuses the whole layer.
* Every directory on the way to a member was created by this unpack (we track the kind of
  every path we made), so no member can be written through a symlink: a member whose path
  crosses a symlink or a file refuses the layer. Nothing is ever resolved on the host.
* Hardlinks may point only at files this layer already created, inside the root.
* ``.wh.NAME`` and ``.wh..wh..opq`` (the OCI image spec's whiteouts) become overlayfs's own
  marks in this layer's directory (a 0/0 character device; ``user.overlay.opaque=y``)
  and are recorded in the layer's metadata, so drivers that cannot read those marks (copy)
  apply them from the record. They never touch anything outside this directory.
* Device nodes are skipped (an unprivileged user cannot make them) and reported; fifos
  are kept. Extended attributes from the layer are not applied at all, so a layer cannot
  plant ``user.overlay.*`` or ``trusted.overlay.*`` marks that change what the image shows.
* Runs of zero bytes are written as holes, so sparse files stay sparse.
* Files and directories are created owned by the caller (ownership squashed); the
  original uid/gid of every entry not owned by 0:0 is recorded. Directory modes are
  applied last, so a 0500 directory still receives its files.
"""

import errno
import io
import os
import posixpath
import stat
import tarfile
from typing import Callable, Dict, List, Optional

from rootless.errors import InvalidImage, SizeLimitExceeded
from rootless.storage.tarinfo import FastTarInfo
from rootless.streams import Reader

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "user.overlay.opaque"
CHUNK = 1 << 20
_ZEROS = bytes(CHUNK)

_DIR, _FILE, _OTHER = "d", "f", "o"


class LayerRecord:
    """What an unpack learned; stored beside the layer as its metadata.

    A plain class, not a dataclass: importing dataclasses (and inspect with it) costs
    ~25 ms of every ``load`` and ``pull``."""

    def __init__(self, whiteouts: Optional[List[str]] = None, opaque_dirs: Optional[List[str]] = None,
                 owners: Optional[Dict[str, List[int]]] = None, skipped_devices: Optional[List[str]] = None,
                 content_size: int = 0, entries: int = 0, whiteout_marks: bool = True,
                 reproducible: bool = False):
        self.whiteouts: List[str] = whiteouts if whiteouts is not None else []
        self.opaque_dirs: List[str] = opaque_dirs if opaque_dirs is not None else []
        self.owners: Dict[str, List[int]] = owners if owners is not None else {}
        self.skipped_devices: List[str] = skipped_devices if skipped_devices is not None else []
        self.content_size, self.entries = content_size, entries
        self.whiteout_marks, self.reproducible = whiteout_marks, reproducible

    def __eq__(self, other) -> bool:
        return isinstance(other, LayerRecord) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return "LayerRecord(%r)" % self.to_json()

    def to_json(self) -> dict:
        return {
            "whiteouts": self.whiteouts, "opaque_dirs": self.opaque_dirs,
            "owners": self.owners, "skipped_devices": self.skipped_devices,
            "content_size": self.content_size, "entries": self.entries,
            "whiteout_marks": self.whiteout_marks, "reproducible": self.reproducible,
        }


def member_path(name: str) -> str:
    """Normalise a member name to a path relative to the layer root, or refuse it.

    Returns "" for the root itself. Pure: the policy half of the unpack.
    """
    if "\0" in name:
        raise InvalidImage("layer member name contains a NUL byte: %r" % name[:100])
    rel = posixpath.normpath("/" + name.lstrip("/")).lstrip("/")
    raw_parts = name.replace("\\", "/").split("/")
    if ".." in raw_parts and _escapes(name):
        raise InvalidImage("layer member %r points outside the layer; refusing the image" % name[:200])
    return "" if rel in (".", "") else rel


def _escapes(name: str) -> bool:
    depth = 0
    for part in name.lstrip("/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def classify_whiteout(rel: str) -> "tuple[str, str]":
    """("opaque", dir) | ("whiteout", path) | ("meta", "") | ("", rel) for a member path."""
    parent, base = posixpath.split(rel)
    if base == OPAQUE_MARKER:
        return "opaque", parent
    if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
        return "meta", ""
    if base.startswith(WHITEOUT_PREFIX):
        target = base[len(WHITEOUT_PREFIX):]
        if target in ("", ".", ".."):
            raise InvalidImage("malformed whiteout %r in layer" % rel)
        return "whiteout", posixpath.join(parent, target)
    return "", rel


class LayerUnpacker:
    """Unpacks tar members into ``dest`` (an empty directory only this process writes)."""

    def __init__(self, dest: str, debug: Optional[Callable[[str], None]] = None,
                 max_size: Optional[int] = None, split_dir: Optional[str] = None):
        self.dest, self.max_size, self.split_dir = dest, max_size, split_dir
        self.recorder = None
        self.region: Optional["tuple[int, int, int]"] = None  # (fd, offset, size): see unpack_region
        self.growing = None
        self.kinds: Dict[str, str] = {"": _DIR}
        self.dir_meta: Dict[str, "tuple[int, int]"] = {}
        self.record = LayerRecord()
        self.debug = debug or (lambda msg: None)

    def host(self, rel: str) -> str:
        return self.dest + "/" + rel if rel else self.dest

    # -- the walk ---------------------------------------------------------------------

    def unpack(self, fileobj) -> LayerRecord:
        if self.split_dir is not None:
            from rootless.storage.tarsplit import Recorder
            counted = self.recorder = Recorder(fileobj, self.split_dir)
        else:
            counted = _Counter(fileobj)
        # tarfile's stream mode pulls 10 KiB at a time; a 1 MiB buffer below it cuts the
        # calls through the hashing and decompressing readers a hundredfold.
        buffered = io.BufferedReader(counted, 1 << 20)
        try:
            self._walk(buffered, "r|", counted.drain)
        finally:
            if self.recorder is not None:
                self.recorder.close()
        # tarfile ends quietly at a header cut short; a whole tar is made of 512-byte blocks.
        _whole_blocks(counted.count)
        self._finish_dirs()
        return self.record

    def unpack_region(self, fd: int, offset: int, size: int, growing=None) -> LayerRecord:
        """Unpack a layer that is ``size`` bytes of the open file ``fd`` from ``offset``.

        The same rules as ``unpack``; only the bytes move differently. tarfile reads the
        headers in its seekable mode and every regular file's content goes from the archive
        to the new file inside the kernel (sendfile), never through Python. The caller
        hashes the region itself (in parallel) and must only trust the result once the
        digest matches; a layer region is hashed and read separately, so the caller must
        also make sure nobody else can change the file meanwhile.

        With ``growing`` (a ``streams.Growing`` for ``fd``), the file is still being
        written, as a pull inflates a layer: ``size`` is then only a bound, every read waits
        for the bytes it needs, and the layer ends where the writer ends.
        """
        from rootless.streams import Window
        self.region = (fd, offset, size)
        self.growing = growing
        def growing_size() -> int:
            return growing.result()[1] - offset
        final_size = growing_size if growing is not None else None
        if self.split_dir is not None:
            from rootless.storage.tarsplit import RegionRecorder
            self.recorder = RegionRecorder(fd, offset, size, self.split_dir, final_size)
        if final_size is None:
            _whole_blocks(size)
        # Headers sit between the contents that are skipped: a small buffer is refilled
        # less often than it would be wasted on a big file's content.
        self._walk(io.BufferedReader(Window(fd, offset, size, growing and growing.wait), 128 << 10), "r:",
                   lambda: None)
        if final_size is not None:
            _whole_blocks(final_size())
        self._finish_dirs()
        return self.record

    def _walk(self, fileobj, mode: str, drain) -> None:
        """Apply every member of the tar in ``fileobj`` (tarfile ``mode``), then finish the
        tar-split record, or ``drain()`` the rest of the stream when there is none."""
        old_umask = os.umask(0)  # files are created with their final mode (see _file)
        try:
            with tarfile.open(fileobj=fileobj, mode=mode, errorlevel=2, tarinfo=FastTarInfo) as tar:
                for member in tar:
                    self.record.entries += 1
                    self._member(tar, member)
            if self.recorder is not None:
                self.recorder.finish()
                self.record.reproducible = self.recorder.reproducible
            else:
                drain()
        except tarfile.ReadError as e:
            raise InvalidImage("layer is not a valid tar stream (%s)" % e)
        except EOFError:
            raise InvalidImage("layer is truncated")
        finally:
            os.umask(old_umask)

    def _member(self, tar, m: tarfile.TarInfo) -> None:
        rel = member_path(m.name)
        kind, target = classify_whiteout(rel)
        if kind == "opaque":
            self._opaque(target)
        elif kind == "whiteout":
            self._whiteout(target)
        elif kind == "meta":
            pass
        elif rel == "":
            if m.isdir():
                self.dir_meta[""] = (stat.S_IMODE(m.mode), int(m.mtime))
        elif m.isdir():
            self._dir(rel, m)
        elif m.isreg():
            self._file(tar, rel, m)
        elif m.issym():
            self._prepare(rel)
            os.symlink(m.linkname, self.host(rel))
            self._utime(rel, m, follow=False)
            self.kinds[rel] = _FILE
        elif m.islnk():
            self._hardlink(rel, m)
        elif m.isfifo():
            self._prepare(rel)
            os.mkfifo(self.host(rel), 0o600)
            os.chmod(self.host(rel), stat.S_IMODE(m.mode))  # mkfifo's mode is cut by the umask
            self.kinds[rel] = _OTHER
        elif m.ischr() or m.isblk():
            self.record.skipped_devices.append(rel)
            self.debug("skipped device node /%s (unprivileged users cannot create it)" % rel)
            return
        else:
            self.debug("skipped unsupported tar member type %r: /%s" % (m.type, rel))
            return
        if kind == "" and (m.uid or m.gid):
            self.record.owners[rel] = [m.uid, m.gid]

    # -- paths --------------------------------------------------------------------------

    def _parents(self, rel: str) -> None:
        """Make sure every ancestor of ``rel`` is a directory this unpack created."""
        parent = posixpath.dirname(rel)
        if self.kinds.get(parent) == _DIR:
            return
        missing = []
        while self.kinds.get(parent) != _DIR:
            if parent in self.kinds:
                raise InvalidImage("layer member /%s lies below /%s, which is not a directory; "
                                   "refusing the image" % (rel, parent))
            missing.append(parent)
            parent = posixpath.dirname(parent)
        for d in reversed(missing):
            os.mkdir(self.host(d), 0o700)
            self.kinds[d] = _DIR

    def _prepare(self, rel: str) -> None:
        """Make the parents of ``rel`` and clear whatever this layer put at ``rel`` before."""
        self._parents(rel)
        old = self.kinds.pop(rel, None)
        if old is None:
            return
        self.record.owners.pop(rel, None)
        if self.recorder is not None:
            self.recorder.lost(rel)
        if old == _DIR:
            from rootless.fsutil import remove_tree
            remove_tree(self.host(rel))
            prefix = rel + "/"
            for key in [k for k in self.kinds if k.startswith(prefix)]:
                del self.kinds[key]
                if self.recorder is not None:
                    self.recorder.lost(key)
            for key in [k for k in self.dir_meta if k == rel or k.startswith(prefix)]:
                del self.dir_meta[key]
            for key in [k for k in self.record.owners if k.startswith(prefix)]:
                del self.record.owners[key]
        else:
            os.unlink(self.host(rel))

    # -- member kinds -----------------------------------------------------------------

    def _dir(self, rel: str, m: tarfile.TarInfo) -> None:
        if self.kinds.get(rel) != _DIR:
            self._prepare(rel)
            os.mkdir(self.host(rel), 0o700)
            self.kinds[rel] = _DIR
        self.dir_meta[rel] = (stat.S_IMODE(m.mode), int(m.mtime))

    def _file(self, tar, rel: str, m: tarfile.TarInfo) -> None:
        # Count what the member claims to unpack to: a sparse member is small in the tar
        # but would expand (through our hole-seeking copy) to its full size.
        if self.max_size is not None and self.record.content_size + m.size > self.max_size:
            from rootless.streams import human_size
            raise SizeLimitExceeded(
                "layer unpacks to more than %s (at /%s); refusing it (a decompression bomb "
                "guard: raise --max-layer-size or ROOTLESS_MAX_LAYER_SIZE if the image is "
                "genuine)" % (human_size(self.max_size), rel))
        self._prepare(rel)
        mode = stat.S_IMODE(m.mode)
        if self.recorder is not None and m.sparse is None:
            self.recorder.exclude(m.offset_data, m.size, rel)
        # Created with its final permission bits (the umask is 0 during the unpack); set-id
        # and sticky bits are set after the write, which would clear them. (Handing the
        # system calls to a second thread was tried: the GIL hand-offs made load slower.)
        fd = os.open(self.host(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode & 0o777)
        try:
            if self.region is not None and m.sparse is None:
                src, base, size = self.region
                end = m.offset_data + m.size
                if end > size or (self.growing is not None and self.growing.wait(base + end) < base + end):
                    raise InvalidImage("layer is truncated inside /%s" % rel)
                if m.size >= CHUNK:
                    _copy_sparse_at(src, base + m.offset_data, fd, m.size)
                else:
                    _send(src, base + m.offset_data, fd, m.size)
            else:
                _copy_sparse(tar.extractfile(m), fd, m.size)
            if mode & 0o7000:
                os.fchmod(fd, mode)
            os.utime(fd, (m.mtime, m.mtime))
        finally:
            os.close(fd)
        self.record.content_size += m.size
        self.kinds[rel] = _FILE

    def _hardlink(self, rel: str, m: tarfile.TarInfo) -> None:
        target = member_path(m.linkname)
        if self.kinds.get(target) not in (_FILE, _OTHER):
            raise InvalidImage("hardlink /%s -> /%s: the target is not a file of this layer; "
                               "refusing the image" % (rel, target))
        if target == rel:
            return
        self._prepare(rel)
        os.link(self.host(target), self.host(rel), follow_symlinks=False)
        self.kinds[rel] = _FILE

    def _whiteout(self, rel: str) -> None:
        self.record.whiteouts.append(rel)
        if rel in self.kinds:
            return  # the spec: a whiteout hides lower layers only, not this one's entry
        self._parents(rel)
        try:
            os.mknod(self.host(rel), stat.S_IFCHR | 0o000, os.makedev(0, 0))
            self.kinds[rel] = _OTHER
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EACCES, errno.EOPNOTSUPP):
                raise
            self.record.whiteout_marks = False

    def _opaque(self, rel: str) -> None:
        if rel in self.kinds and self.kinds[rel] != _DIR:
            raise InvalidImage("opaque whiteout inside /%s, which is not a directory of this "
                               "layer; refusing the image" % rel)
        self.record.opaque_dirs.append(rel)
        if self.kinds.get(rel) != _DIR:
            self._prepare(rel)
            os.mkdir(self.host(rel), 0o700)
            self.kinds[rel] = _DIR
        try:
            os.setxattr(self.host(rel), OVERLAY_OPAQUE_XATTR, b"y")
        except OSError:
            self.record.whiteout_marks = False

    def _utime(self, rel: str, m: tarfile.TarInfo, follow: bool) -> None:
        try:
            os.utime(self.host(rel), (m.mtime, m.mtime), follow_symlinks=follow)
        except (OSError, NotImplementedError):
            pass

    def _finish_dirs(self) -> None:
        """Directory modes and times last, deepest first: writing into a dir changes both."""
        for rel in sorted(self.kinds, key=lambda r: r.count("/"), reverse=True):
            if self.kinds[rel] != _DIR:
                continue
            mode, mtime = self.dir_meta.get(rel, (0o755, 0))
            path = self.host(rel)
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime))


def _whole_blocks(size: int) -> None:
    if size % tarfile.BLOCKSIZE:
        raise InvalidImage("layer is truncated (%d bytes, not a whole number of tar blocks)" % size)


class _Counter(Reader):
    """Counts the bytes tarfile reads, so a stream cut inside a header is noticed."""

    def __init__(self, raw):
        super().__init__()
        self.raw, self.count = raw, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def _copy_sparse(src, fd: int, size: int) -> None:
    """Copy ``size`` bytes, seeking over all-zero chunks, so sparse files stay sparse."""
    remaining = size
    hole = False
    while remaining:
        chunk = src.read(min(CHUNK, remaining))
        if not chunk:
            raise InvalidImage("layer is truncated inside a file")
        remaining -= len(chunk)
        if chunk[:1] == b"\0" and chunk[-1:] == b"\0" and chunk == _ZEROS[: len(chunk)]:
            os.lseek(fd, len(chunk), os.SEEK_CUR)
            hole = True
        else:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
    if hole:
        os.ftruncate(fd, size)


def _send(src: int, offset: int, fd: int, size: int) -> None:
    """Copy ``size`` bytes of ``src`` from ``offset`` to ``fd``, inside the kernel."""
    while size:
        n = os.sendfile(fd, src, offset, size)
        if n == 0:
            raise InvalidImage("layer is truncated inside a file")
        offset += n
        size -= n


def _copy_sparse_at(src: int, offset: int, fd: int, size: int) -> None:
    """``_copy_sparse`` for a file region: all-zero chunks become holes, the rest is sent
    inside the kernel. Only a chunk whose first and last bytes are zero is read into memory
    to be looked at; any other cannot be all zeros and goes straight to sendfile."""
    buf = None
    done, hole = 0, False
    while done < size:
        n = min(CHUNK, size - done)
        at = offset + done
        if os.pread(src, 1, at) == b"\0" and os.pread(src, 1, at + n - 1) == b"\0":
            if buf is None:
                buf = bytearray(CHUNK)
                view = memoryview(buf)
            if os.preadv(src, [view[:n]], at) != n:
                raise InvalidImage("layer is truncated inside a file")
            # (bytearray == bytes is a memcmp; a memoryview compares item by item)
            if (buf == _ZEROS) if n == CHUNK else (buf[:n] == _ZEROS[:n]):
                os.lseek(fd, n, os.SEEK_CUR)
                hole = True
            else:
                out = view[:n]
                while out:
                    out = out[os.write(fd, out):]
        else:
            _send(src, at, fd, n)
        done += n
    if hole:
        os.ftruncate(fd, size)


def unpack(fileobj, dest: str, debug=None, max_size: Optional[int] = None,
           split_dir: Optional[str] = None) -> LayerRecord:
    """Unpack the uncompressed tar stream ``fileobj`` into the empty directory ``dest``,
    refusing it once its files add up to more than ``max_size`` bytes. With ``split_dir``,
    also record what ``tarsplit.Reassembled`` needs to rebuild the stream from ``dest``."""
    return LayerUnpacker(dest, debug, max_size, split_dir).unpack(fileobj)


def unpack_region(fd: int, offset: int, size: int, dest: str, debug=None,
                  max_size: Optional[int] = None, split_dir: Optional[str] = None, growing=None) -> LayerRecord:
    """``unpack`` for a layer stored uncompressed at ``offset`` in the open file ``fd``
    (which may still be growing: see ``LayerUnpacker.unpack_region``)."""
    return LayerUnpacker(dest, debug, max_size, split_dir).unpack_region(fd, offset, size, growing)


__all__ = ["unpack", "unpack_region", "member_path", "classify_whiteout", "LayerRecord", "SizeLimitExceeded"]
