"""``cp`` both ways and ``export``: the host's half, around a view of the container's root.

The host side sees the user's paths, the view (``runtime.rootview``) the container's; the
rules of where a source lands are ``runtime.cprules``'; the streams between the two are
``runtime.copytar``'s, and whichever side extracts trusts nothing in the stream. Files
copied out belong to the user running ``cp`` (Docker's rule); files copied in belong to
the container's root, or with ``-a`` keep the source's ids (yours becoming 0).
"""

import os
import stat
from typing import Optional

from rootless.errors import NotFound, UsageError
from rootless.runtime import copytar, cprules, state
from rootless.runtime.rootview import EXPORT_SKIPS, View, stat_path

CHUNK = 1 << 20


class Copied:
    """What a copy did: bytes of file content, and the destination as Docker names it."""

    def __init__(self, size: int, shown: str):
        self.size, self.shown = size, shown


def copy(paths, src: str, dst: str, follow: bool = False, archive: bool = False,
         stdin=None, stdout=None, debug=None) -> Copied:
    """``cp SRC DST``: one side ``CONTAINER:PATH``, the other a host path or ``-``
    (``stdin``/``stdout``, binary file objects)."""
    how, ref, a, b = cprules.direction(src, dst)
    if how == "in" and a != "-":
        _local_source(a, follow)  # before the container is even looked up, as Docker
    record = state.Containers(paths).find(ref)
    if how == "out":
        return Copied(copy_out(paths, record, a, b, follow, archive, stdout, debug), b)
    return Copied(copy_in(paths, record, a, b, follow, archive, stdin), dst)


def copy_out(paths, record: dict, src: str, dst: str, follow: bool, archive: bool, stdout=None, debug=None) -> int:
    with View(paths, record) as view:
        seen = view.stat(src, follow)
        if not seen.exists:
            raise NotFound("Could not find the file %s in container %s" % (src, record["name"]))
        if dst == "-":
            return view.send(src, cprules.source_name(src, seen.is_dir), lambda f: _pump(f, stdout), follow)
        local = stat_path(dst, True)
        linked = cprules.through_link(dst, local)
        if linked:
            dst, local = linked, stat_path(linked, True)
        directory, name = cprules.plan(src, seen.is_dir, dst, local)
        top = None if name == "." else name
        return view.send(src, name, lambda f: copytar.extract(f, directory, top, keep_setid=archive, debug=debug),
                         follow)


def copy_in(paths, record: dict, src: str, dst: str, follow: bool, archive: bool, stdin=None) -> int:
    with View(paths, record) as view:
        seen = view.stat(dst, True)
        linked = cprules.through_link(dst, seen)
        if linked:
            dst, seen = linked, view.stat(linked, True)
        if src == "-":
            if not (seen.exists and seen.is_dir):
                raise NotFound("the destination %s must be a directory of container %s to extract a "
                               "tar stream into" % (dst, record["name"]))
            return view.receive(dst, lambda out: _pump(_decompressed(stdin), out), owners=archive, keep_setid=archive)
        is_dir = stat.S_ISDIR(_local_source(src, follow).st_mode)
        try:
            directory, name = cprules.plan(src, is_dir, dst, seen)
        except NotFound as e:
            raise NotFound("%s in container %s" % (e, record["name"]))
        ids = _as_in_container if archive else None
        return view.receive(directory, lambda out: copytar.write_tree(out, src, name, follow, ids=ids),
                            top=None if name == "." else name, owners=archive, keep_setid=archive)


def export(paths, ref: str, output: Optional[str], stdout) -> int:
    """The container's root file system as a tar stream to the file ``output``, or to
    ``stdout`` (a binary file object) unless it is a terminal; bytes written."""
    record = state.Containers(paths).find(ref)
    if not output and _is_terminal(stdout):
        raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    with View(paths, record, fresh=True) as view:
        if not output:
            return view.send("/", "", lambda f: _pump(f, stdout), skips=EXPORT_SKIPS)
        with open(output, "wb") as out:
            return view.send("/", "", lambda f: _pump(f, out), skips=EXPORT_SKIPS)


def _local_source(path: str, follow: bool) -> os.stat_result:
    try:
        return os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        raise NotFound("no such file or directory: %s" % path)
    except NotADirectoryError:
        raise NotFound("not a directory on the way to %s" % path)


def _as_in_container(uid: int, gid: int):
    """``cp -a``: your ids are the container's root; other ids go in as their numbers."""
    return (0 if uid == os.getuid() else uid), (0 if gid == os.getgid() else gid)


def _pump(src, dst) -> int:
    total = 0
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            dst.flush()
            return total
        dst.write(chunk)
        total += len(chunk)


def _is_terminal(stream) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False


def _decompressed(stream):
    """``cp -``'s stdin as a plain tar stream: gzip, bzip2 and xz are undone here, on the
    host (the view could not import their modules after its change of root)."""
    import io
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream)
    head = buffered.peek(6)[:6]
    if head.startswith(b"\x1f\x8b"):
        import gzip
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    if head.startswith(b"BZh"):
        import bz2
        return bz2.BZ2File(buffered)
    if head.startswith(b"\xfd7zXZ\x00"):
        import lzma
        return lzma.LZMAFile(buffered)
    return buffered
