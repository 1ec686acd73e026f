"""What a container changed in its root file system: ``diff``'s lines and ``commit``'s layer.

Both come from one comparison of the container's side with the image's layers:

* ``overlay`` and ``fuse-overlayfs`` keep the container's writable layer in ``upper/``:
  only what is there can differ from the image. Their whiteouts, as they really make them
  here: the kernel writes a 0/0 character device for a removed name and sets
  ``user.overlay.opaque=y`` (``trusted.`` outside a user namespace) on a directory that
  replaces one below; fuse-overlayfs writes the same 0/0 device (or a ``.wh.NAME`` file
  where it cannot), and marks a directory it makes opaque with
  ``user.fuseoverlayfs.opaque=y`` plus ``.wh..wh..opq`` and ``.wh..opq`` entries in it.
* ``copy`` has no upper dir: its rootfs is compared, entry by entry, with the image its
  layers show (``ImageView``): type, permission bits, owner, size, mtime and link target.
  What the image has and the rootfs lacks was deleted. (Content is not read: as Docker's
  own comparison, a change that keeps size and mtime is not seen.)

Rules (Docker's, where Docker has one): an entry of the container's that the image lacks
is ``A``; one the image has with other metadata is ``C``; a directory with any change
below it is ``C`` too, listed before them; a name the image has and the container no
longer shows is ``D``. Entries equal to the image's are no change: with sub-ids the
runtime gives image files their owners at the first start, which copies them up, and
those copies are not the container's doing. The runtime's own mount points (/proc, /sys,
/dev, /etc/hosts, /etc/hostname, /etc/resolv.conf), made in the rootfs when the image
lacks them, are hidden as Docker's init layer hides them, unless the rootfs holds more
than the empty placeholder. The order is a walk of the tree, each directory's names
sorted: parents before children, as ``docker diff`` prints them.

The layer ``commit`` makes is a tar of exactly those entries, parents first: ``D`` as
``.wh.NAME``, a directory that hides the image's below it as its entry plus
``.wh..wh..opq``, every header with the container's own uid/gid and mtime (seconds, as
Docker's). Everything here runs in a child that is root of a user namespace with the
container's mapping (``launch.as_mapped_root``): with sub-ids the upper dir holds files
of sub-ids with private modes, which that child reads and sees with container ids.
Nothing is written but the tar, at the path the caller gives.
"""

import os
import stat
import tarfile
import time
from typing import Dict, List, NamedTuple, Optional, Set, Tuple

RUNTIME_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf")
RUNTIME_DIRS = ("proc", "sys", "dev")
RUNTIME_PARENTS = ("etc",)  # made only to hold the files above when the image has no /etc
OPAQUE_XATTRS = ("user.overlay.opaque", "trusted.overlay.opaque", "user.fuseoverlayfs.opaque")
OPAQUE_MARKERS = (".wh..wh..opq", ".wh..opq")
WHITEOUT = ".wh."
_DELETED = None  # an entry a whiteout removed, in a scanned directory


class Change(NamedTuple):
    """One line of ``diff`` (``kind`` A, C or D; ``rel`` without the leading /). ``opaque``:
    a directory that hides everything of the image below it; ``covered``: a deletion an
    opaque directory above already makes (the layer needs no whiteout for it)."""

    kind: str
    rel: str
    opaque: bool = False
    covered: bool = False


class Meta(NamedTuple):
    kind: str  # d f l p c b s
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    target: str


def meta_of(path: str, st: os.stat_result, owner=None, dir_fd: Optional[int] = None) -> Meta:
    kind = _kind(st.st_mode)
    uid, gid = owner if owner else (st.st_uid, st.st_gid)
    target = os.readlink(path, dir_fd=dir_fd) if kind == "l" else ""
    size = st.st_size if kind in ("f", "l") else 0
    # Only what a tar keeps is compared: a fifo or device is made without its mtime.
    mtime = st.st_mtime_ns if kind in ("f", "l", "d") else 0
    return Meta(kind, stat.S_IMODE(st.st_mode), uid, gid, size, mtime, target)


def _kind(mode: int) -> str:
    for test, letter in ((stat.S_ISDIR, "d"), (stat.S_ISREG, "f"), (stat.S_ISLNK, "l"), (stat.S_ISFIFO, "p"),
                         (stat.S_ISCHR, "c"), (stat.S_ISBLK, "b")):
        if test(mode):
            return letter
    return "s"


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _ancestors(rel: str) -> List[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


class ImageView:
    """The image as its layers show it (lowest first, ``(diff_dir, record)``), looked up
    path by path: the topmost layer holding a path wins; a whiteout, an opaque directory
    or a non-directory in a higher layer hides what lies below. Marks on disk and the
    layers' records are both honoured (the copy driver's layers may have no marks).

    ``owners`` are the image's non-root owners (the bundle's owners file), used once the
    runtime has applied them; else an entry's owner is what the layer file shows."""

    def __init__(self, layers: List[Tuple[str, dict]], owners: Optional[Dict[str, List[int]]] = None):
        self.layers = list(reversed(layers))  # topmost first
        self.hidden = [(set(rec.get("whiteouts", [])), set(rec.get("opaque_dirs", []))) for _, rec in self.layers]
        self.owners = owners or {}

    def lookup(self, rel: str) -> Optional[Tuple[str, os.stat_result]]:
        above = _ancestors(rel)
        for (diff, _), (whiteouts, opaques) in zip(self.layers, self.hidden):
            path, blocked = _in_layer(diff, rel)
            if path is not None:
                return None if _is_whiteout(path[1]) else path
            if blocked or rel in whiteouts or any(a in whiteouts or a in opaques for a in above):
                return None
        return None

    def meta(self, rel: str) -> Optional[Meta]:
        found = self.lookup(rel)
        if found is None:
            return None
        path, st = found
        return meta_of(path, st, self.owners.get(rel))

    def children(self, rel: str) -> List[str]:
        """The names the image shows in its directory ``rel``."""
        names: Set[str] = set()
        above = _ancestors(rel) if rel else []
        for (diff, _), (whiteouts, opaques) in zip(self.layers, self.hidden):
            path, blocked = _in_layer(diff, rel)
            if path is not None:
                if not stat.S_ISDIR(path[1].st_mode):
                    break
                names.update(os.listdir(path[0]))
            if blocked or rel in opaques or rel in whiteouts or any(a in whiteouts or a in opaques for a in above):
                break
        return sorted(n for n in names if self.lookup(_join(rel, n)) is not None)


def _in_layer(diff: str, rel: str):
    """((path, lstat) of ``rel`` in one layer, or None; whether a non-directory of that
    layer on the way hides ``rel`` and everything below it)."""
    path = diff
    parts = rel.split("/") if rel else []
    for i, part in enumerate(parts):
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None, False
        if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
            return None, True
    if not parts:
        try:
            return (diff, os.lstat(diff)), False
        except FileNotFoundError:
            return None, False
    return (path, st), False


def _join(rel: str, name: str) -> str:
    return rel + "/" + name if rel else name


class Comparison:
    """The walk: ``top`` is the container's side (upper dir, or the copy's rootfs)."""

    def __init__(self, top: str, view: ImageView, upper: bool):
        self.top, self.view, self.upper = top, view, upper

    def changes(self) -> List[Change]:
        found, _, _, _ = self._dir("", hides_lower=not self.upper, exact=False, in_image=True)
        return found

    def _scan(self, fd: int):
        """{name: lstat or _DELETED} of an open container-side directory; whether it is
        opaque."""
        entries: Dict[str, Optional[os.stat_result]] = {}
        opaque = self.upper and any(_xattr(fd, name) == b"y" for name in OPAQUE_XATTRS)
        for name in os.listdir(fd):
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if name.startswith(WHITEOUT):
                # Overlay metadata (fuse-overlayfs's forms); in a copy rootfs such names
                # cannot be put in a layer, whose format gives them this meaning.
                if self.upper and name in OPAQUE_MARKERS:
                    opaque = True
                elif self.upper and stat.S_ISREG(st.st_mode) and not name.startswith(WHITEOUT + WHITEOUT):
                    entries.setdefault(name[len(WHITEOUT):], _DELETED)
                continue
            if self.upper and _is_whiteout(st):
                entries.setdefault(name, _DELETED)
                continue
            entries[name] = st
        return entries, opaque

    def _dir(self, rel: str, hides_lower: bool, exact: bool, in_image: bool):
        """(changes below the container's directory ``rel``, how many of its entries are no
        change (runtime placeholders, entries as the image has them), whether it hides the
        image's entries below it, how many entries it holds). ``hides_lower``: what the image has here and the container does not
        show is deleted (copy, or below an opaque directory); ``exact``: every entry is
        listed, equal or not (below an opaque directory the layer must carry them all)."""
        fd = open_dir(self.top, rel)
        try:
            entries, opaque = self._scan(fd)
            opaque = opaque and bool(rel) and in_image
            if opaque:
                hides_lower = exact = True
            names = set(entries)
            if hides_lower and in_image:
                names.update(self.view.children(rel))
            found: List[Change] = []
            hidden = 0
            for name in sorted(names):
                crel = _join(rel, name)
                image = self.view.meta(crel) if in_image else None
                st = entries.get(name, _DELETED)
                if st is _DELETED:
                    if image is not None:
                        found.append(Change("D", crel, covered=exact))
                    continue
                mine = meta_of(name, st, dir_fd=fd)
                if image is None and _placeholder(crel, mine, name, fd):
                    hidden += 1
                    continue
                more = self._entry(crel, mine, image, exact, hides_lower)
                hidden += not more  # an entry as the image has it (an owner's copy-up)
                found.extend(more)
            return found, hidden, opaque, len(entries)
        finally:
            os.close(fd)

    def _entry(self, rel: str, mine: Meta, image: Optional[Meta], exact: bool, hides_lower: bool) -> List[Change]:
        if mine.kind != "d":
            if image is None:
                return [Change("A", rel)]
            return [Change("C", rel)] if exact or mine != image else []
        in_image = image is not None and image.kind == "d"
        below, hidden, opaque, count = self._dir(rel, hides_lower, exact, in_image)
        if image is None:
            if hidden and hidden == count and rel in RUNTIME_PARENTS:
                return []  # made only to hold the runtime's mount points
            return [Change("A", rel)] + below
        # Making a mount point in a directory, or copying up an entry to give it its owner
        # (fuse-overlayfs then gives the copied-up directory a new mtime), changes the
        # directory's mtime: that is the runtime's doing, not the container's.
        same = mine == image or (hidden > 0 and mine._replace(mtime_ns=image.mtime_ns) == image)
        if below or exact or opaque or not same:
            return [Change("C", rel, opaque=opaque)] + below
        return []


def open_dir(top: str, rel: str) -> int:
    """A descriptor of the directory ``top/rel``, reached one name at a time without
    following a symlink: a running container may swap a directory for a link to the host's
    files between two reads, and what is read here goes into an image."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in rel.split("/") if rel else []:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _placeholder(rel: str, mine: Meta, name: str, dir_fd: int) -> bool:
    """An empty mount point the runtime made where the image has nothing."""
    if rel in RUNTIME_FILES:
        return mine.kind == "f" and mine.size == 0
    if rel in RUNTIME_DIRS and mine.kind == "d":
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            return not os.listdir(fd)
        finally:
            os.close(fd)
    return False


def _xattr(fd: int, name: str) -> Optional[bytes]:
    try:
        return os.getxattr(fd, name)
    except OSError:
        return None


def container_changes(top: str, layers: List[Tuple[str, dict]], upper: bool,
                      owners: Optional[Dict[str, List[int]]] = None) -> List[Change]:
    """The changes of the container whose writable side is ``top`` (its upper dir when
    ``upper``, else its copy rootfs) over the image ``layers`` (lowest first)."""
    return Comparison(top, ImageView(layers, owners), upper).changes()


def lines(changes: List[Change]) -> List[str]:
    """``docker diff``'s lines."""
    return ["%s /%s" % (c.kind, c.rel) for c in changes]


# -- the layer -------------------------------------------------------------------------------

def write_layer(top: str, changes: List[Change], dest: str) -> int:
    """Write the tar of ``changes`` (read from ``top``) to the new file ``dest``; its size."""
    now = int(time.time())
    links: Dict[Tuple[int, int], str] = {}
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for change in changes:
                if change.kind == "D":
                    if not change.covered:
                        parent, _, name = change.rel.rpartition("/")
                        tar.addfile(_marker(_join(parent, WHITEOUT + name), now))
                    continue
                try:
                    _add(tar, top, change.rel, links)
                except FileNotFoundError:
                    # Gone since the comparison: a container that was not paused
                    # (--pause=false) removed or renamed it; the layer is as of later.
                    continue
                if change.opaque:
                    tar.addfile(_marker(change.rel + "/" + WHITEOUT + WHITEOUT + ".opq", now))
        f.flush()
        os.fsync(f.fileno())
        return f.tell()


def _marker(name: str, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.size = 0o600, mtime, 0
    return info


def _add(tar, top: str, rel: str, links: Dict[Tuple[int, int], str]) -> None:
    parent, _, name = rel.rpartition("/")
    dir_fd = open_dir(top, parent)
    try:
        _add_entry(tar, rel, name, dir_fd, links)
    finally:
        os.close(dir_fd)


def _add_entry(tar, rel: str, name: str, dir_fd: int, links: Dict[Tuple[int, int], str]) -> None:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    info = tarfile.TarInfo(rel)
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)
    kind = _kind(st.st_mode)
    if kind == "d":
        info.type = tarfile.DIRTYPE
    elif kind == "l":
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
    elif kind == "p":
        info.type = tarfile.FIFOTYPE
    elif kind in ("c", "b"):
        info.type = tarfile.CHRTYPE if kind == "c" else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif kind == "f":
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[key]
            tar.addfile(info)
            return
        if st.st_nlink > 1:
            links[key] = rel
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as f:
            info.size = os.fstat(fd).st_size
            tar.addfile(info, f)
        return
    else:
        return  # a socket: a layer cannot hold one
    tar.addfile(info)


# -- a container's --------------------------------------------------------------------------

def _of(cdir: str, layers: List[Tuple[str, dict]]):
    """(the bundle, its writable side, whether that is an upper dir, the image's owners)."""
    from rootless import jsonfast
    from rootless.runtime.config import Bundle
    from rootless.storage import rootfs
    bundle = Bundle.load(cdir)
    driver = rootfs.get(bundle.driver or "copy")
    owners = None
    if bundle.owners and os.path.exists(bundle.owners + ".applied"):
        with open(bundle.owners) as f:
            owners = jsonfast.load(f)
    return bundle, driver.writable(cdir), driver.upper, owners


def diff(cdir: str, layers: List[Tuple[str, dict]]) -> List[Change]:
    """The changes of the container in ``cdir`` (its image's ``layers``), read as its root."""
    from rootless.runtime.launch import as_mapped_root
    bundle, top, upper, owners = _of(cdir, layers)
    found = as_mapped_root(bundle, lambda: [list(c) for c in container_changes(top, layers, upper, owners)],
                           "reading the container's changes as its root")
    return [Change(*c) for c in found or []]


def export_layer(cdir: str, layers: List[Tuple[str, dict]], dest: str) -> Tuple[int, int]:
    """Write the container's changes as a layer tar to ``dest``: (entries, bytes)."""
    from rootless.runtime.launch import as_mapped_root

    def work():
        found = container_changes(top, layers, upper, owners)
        return [len(found), write_layer(top, found, dest) if found else 0]
    bundle, top, upper, owners = _of(cdir, layers)
    count, size = as_mapped_root(bundle, work, "archiving the container's changes as its root")
    return count, size
