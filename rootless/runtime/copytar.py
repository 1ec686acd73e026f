"""The tar streams of ``cp`` and ``export``: one writer of a tree, one extractor that
trusts nothing it reads.

Whichever way a copy goes, the stream is written on the side that sees the source and
read on the side that sees the destination; the container's side runs in a view of its
root (``runtime.rootview``). A stream coming out of a container is hostile (the container
chose every name, link and mode in it), and so, for the container, is one going in. The
extractor's rules, per member:

* the name is made relative and normalised; a name that climbs out (``..``) refuses the
  copy; with ``top`` given, a member outside ``top`` refuses it too, so nothing lands
  beside the one name the copy was meant to create;
* every directory on the way is a real directory (``fsutil.real_dir_path``, never through a
  symlink, not even one this stream just made); missing ones are created;
* an existing entry is replaced, never written through (unlinked first, then created with
  ``O_EXCL | O_NOFOLLOW``); a directory never replaces a file nor a file a directory
  (Docker's "cannot overwrite" rules);
* hard links point only at files this stream created; device nodes are skipped;
  set-id bits are dropped unless asked to keep them (``cp -a``); ownership is applied
  only when asked (``cp -a`` into a container), never on the host;
* directory modes and times are applied last, deepest first.

The writer never looks up user or group names (after a change of root that would read the
container's /etc/nsswitch.conf and load its libraries); a file that shrinks while it is
read is padded, one that grows is cut at the size its header gave.

Everything here is imported before a view changes root (see ``runtime.rootview``).
"""

import errno
import os
import stat
import tarfile
from typing import Callable, Dict, List, Optional, Tuple

from rootless.errors import InvalidImage, RootlessError
from rootless.fsutil import real_dir_path
from rootless.storage.layers import member_path

CHUNK = 1 << 20
SETID = 0o6000

Ids = Callable[[int, int], Tuple[int, int]]


class Refused(RootlessError):
    """A tar stream of a copy asked for something unsafe; the copy stops there."""


# -- writing ----------------------------------------------------------------------------------


class _Exact:
    """A file's content as exactly ``size`` bytes: zeros after an early end of file."""

    def __init__(self, fd: int, size: int):
        self.fd, self.left = fd, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        if n <= 0:
            return b""
        data = os.read(self.fd, n) or bytes(n)
        self.left -= len(data)
        return data


class TreeWriter:
    """Writes trees as tar members to ``out`` (a binary file object, left open)."""

    def __init__(self, out, ids: Optional[Ids] = None, skip_contents=(),
                 owners: Optional[Dict[str, Tuple[int, int]]] = None):
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                                encoding="utf-8", errors="surrogateescape")
        self.ids = ids
        self.owners = owners or {}  # member name -> ids, for members still owned by 0:0
        self.skip_contents = set(skip_contents)  # member names whose contents are left out
        self.links: Dict[Tuple[int, int], str] = {}
        self.size = 0

    def add(self, path: str, name: str, follow: bool = False) -> None:
        """``path`` and what is below it as ``name`` ("": its contents at the top of the
        stream); ``follow`` follows ``path`` itself when it is a symlink."""
        st = os.stat(path) if follow else os.lstat(path)
        stack = [(path, name, st)]
        while stack:
            p, n, st = stack.pop()
            if n:
                self._member(p, n, st)
            if stat.S_ISDIR(st.st_mode) and n not in self.skip_contents:
                children = []
                with os.scandir(p) as entries:
                    for entry in entries:
                        children.append(entry.name)
                for child in sorted(children, reverse=True):
                    cp = os.path.join(p, child)
                    try:
                        cst = os.lstat(cp)
                    except FileNotFoundError:
                        continue  # gone meanwhile (a running container)
                    stack.append((cp, n + "/" + child if n else child, cst))

    def _member(self, path: str, name: str, st: os.stat_result) -> None:
        info = tarfile.TarInfo(name)
        mode = st.st_mode
        info.mode, info.mtime = stat.S_IMODE(mode), int(st.st_mtime)
        info.uid, info.gid = self.ids(st.st_uid, st.st_gid) if self.ids else (st.st_uid, st.st_gid)
        if self.owners and (info.uid, info.gid) == (0, 0) and name in self.owners:
            info.uid, info.gid = self.owners[name]
        info.uname = info.gname = ""
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                info.type, info.linkname = tarfile.LNKTYPE, self.links[key]
            else:
                if st.st_nlink > 1:
                    self.links[key] = name
                return self._file(path, info, st)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            return  # a socket: tar has no kind for it
        self.tar.addfile(info)

    def _file(self, path: str, info: tarfile.TarInfo, st: os.stat_result) -> None:
        # O_NOFOLLOW | O_NONBLOCK: what was a file at lstat may be a symlink or a fifo by now.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode):
                return
            info.size = now.st_size
            self.tar.addfile(info, _Exact(fd, info.size))
            self.size += info.size
        finally:
            os.close(fd)

    def close(self) -> None:
        self.tar.close()


def write_tree(out, path: str, name: str, follow: bool = False, ids: Optional[Ids] = None,
               skip_contents=(), owners=None) -> int:
    """One tree as a whole tar stream on ``out``; the bytes of file content written."""
    writer = TreeWriter(out, ids, skip_contents, owners)
    try:
        writer.add(path, name, follow)
    except BaseException:
        # The stream is cut short: tarfile must not try to end it again when it is
        # collected (on a pipe whose reader left, that is a second error on stderr).
        writer.tar.fileobj.closed = True
        raise
    writer.close()
    return writer.size


# -- reading ----------------------------------------------------------------------------------


_DIR, _FILE, _OTHER = "d", "f", "o"


class Extractor:
    """Extracts a hostile tar stream into the existing directory ``dest``.

    ``top``: the one name at the top of the stream that may be created in ``dest``
    (None: anything below ``dest``). ``owners``: apply each member's uid/gid (else what
    is created belongs to whoever extracts). ``keep_setid``: keep set-uid/set-gid bits."""

    def __init__(self, dest: str, top: Optional[str] = None, owners: bool = False,
                 keep_setid: bool = False, debug: Optional[Callable[[str], None]] = None):
        self.dest, self.top, self.owners, self.keep_setid = dest, top, owners, keep_setid
        self.debug = debug or (lambda message: None)
        self.made: Dict[str, str] = {}
        self.dirs: List[Tuple[str, tarfile.TarInfo]] = []
        self.size = 0

    def extract(self, fileobj) -> int:
        """Every member of the stream; the bytes of file content written."""
        old_umask = os.umask(0)
        try:
            with tarfile.open(fileobj=fileobj, mode="r|", encoding="utf-8", errors="surrogateescape") as tar:
                for member in tar:
                    self._member(tar, member)
            # tarfile stops at the end-of-archive blocks; the writer may still be sending
            # its last record, which would fail on a pipe closed under it.
            while fileobj.read(CHUNK):
                pass
        except tarfile.ReadError as e:
            raise Refused("the copy's tar stream is not valid (%s)" % e)
        except EOFError:
            raise Refused("the copy's tar stream ended early")
        finally:
            os.umask(old_umask)
        self._finish_dirs()
        return self.size

    def _rel(self, name: str) -> str:
        try:
            rel = member_path(name)
        except InvalidImage:
            raise Refused("refusing the copy: the tar member %r points outside the destination" % name[:200])
        if self.top is not None and rel.split("/")[0] != self.top:
            raise Refused("refusing the copy: the tar member %r is not under %r, the name being copied"
                          % (name[:200], self.top))
        return rel

    def _path(self, rel: str) -> str:
        path = real_dir_path(self.dest, rel, make=True)
        if path is None:
            raise Refused("refusing the copy: /%s would be reached through a symlink or a file" % rel)
        return path

    def _member(self, tar, m: tarfile.TarInfo) -> None:
        rel = self._rel(m.name)
        if rel == "":
            return  # the destination itself: it exists, and is not ours to change
        if m.ischr() or m.isblk():
            self.debug("skipped device node %s" % rel)
            return
        if not (m.isdir() or m.isreg() or m.issym() or m.islnk() or m.isfifo()):
            self.debug("skipped tar member %s of type %r" % (rel, m.type))
            return
        path = self._path(rel)
        try:
            old = os.lstat(path)
        except FileNotFoundError:
            old = None
        if m.isdir():
            if old is None:
                os.mkdir(path, 0o700)
            elif not stat.S_ISDIR(old.st_mode):
                raise Refused("cannot overwrite non-directory %s with a directory" % self._shown(rel))
            self.made[rel] = _DIR
            self.dirs.append((path, m))
            return
        if old is not None:
            if stat.S_ISDIR(old.st_mode):
                raise Refused("cannot overwrite directory %s with a non-directory" % self._shown(rel))
            os.unlink(path)
        if m.isreg():
            self._file(tar, path, m)
            self.made[rel] = _FILE
        elif m.issym():
            os.symlink(m.linkname, path)
            self._own(path, m, follow=False)
            self._utime(path, m, follow=False)
            self.made[rel] = _OTHER
        elif m.islnk():
            self._hardlink(rel, path, m)
        else:
            os.mkfifo(path, 0o600)
            self._own(path, m, follow=False)
            os.chmod(path, self._mode(m))
            self.made[rel] = _FILE

    def _shown(self, rel: str) -> str:
        return os.path.join(self.dest, rel)

    def _mode(self, m: tarfile.TarInfo) -> int:
        mode = stat.S_IMODE(m.mode)
        return mode if self.keep_setid else mode & ~SETID

    def _file(self, tar, path: str, m: tarfile.TarInfo) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            src = tar.extractfile(m)
            left = m.size
            while left:
                chunk = src.read(min(CHUNK, left))
                if not chunk:
                    raise Refused("the copy's tar stream ended inside %s" % m.name[:200])
                left -= len(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            self._own(fd, m)
            os.fchmod(fd, self._mode(m))  # after chown, which clears set-id bits
            os.utime(fd, (m.mtime, m.mtime))
        finally:
            os.close(fd)
        self.size += m.size

    def _hardlink(self, rel: str, path: str, m: tarfile.TarInfo) -> None:
        target = self._rel(m.linkname)
        if self.made.get(target) != _FILE:
            raise Refused("refusing the copy: the hard link %s -> %s does not point at a file of "
                          "the copy" % (m.name[:200], m.linkname[:200]))
        os.link(self._path(target), path, follow_symlinks=False)
        self.made[rel] = _FILE

    def _own(self, where, m: tarfile.TarInfo, follow: bool = True) -> None:
        if not self.owners:
            return
        try:
            if isinstance(where, int):
                os.fchown(where, m.uid, m.gid)
            else:
                os.chown(where, m.uid, m.gid, follow_symlinks=follow)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM):
                raise
            # An id the container's mapping lacks (single-uid mode maps 0 alone): the
            # entry stays the container root's.

    def _utime(self, path: str, m: tarfile.TarInfo, follow: bool) -> None:
        try:
            os.utime(path, (m.mtime, m.mtime), follow_symlinks=follow)
        except (OSError, NotImplementedError):
            pass

    def _finish_dirs(self) -> None:
        for path, m in sorted(self.dirs, key=lambda item: item[0].count("/"), reverse=True):
            self._own(path, m, follow=False)
            os.chmod(path, self._mode(m))
            self._utime(path, m, follow=False)


def extract(fileobj, dest: str, top: Optional[str] = None, owners: bool = False,
            keep_setid: bool = False, debug=None) -> int:
    """``Extractor(...).extract(fileobj)``."""
    return Extractor(dest, top, owners, keep_setid, debug).extract(fileobj)

