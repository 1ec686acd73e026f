"""The copy driver's core: flatten an image's layers into one directory tree.

Used where no overlay file system is available (and to check what an image shows). Layers
are applied bottom-up with the OCI image spec's semantics, taken from each layer's record
(not from marks on disk, which some file systems cannot hold):

* a whiteout removes the path from what the layers below built;
* an opaque directory drops everything the layers below put in it;
* a directory merges into a directory and replaces anything else; any other entry
  replaces what was there.

Layers of another user's image store may hold entries their owner alone may read (an
image's /root is 0700): with ``unreadable`` given, each becomes an empty file or directory
of its own mode and is listed there for the caller to report; without it, they fail.

Safety: every path touched in ``dest`` is reached through directories we verified with
``lstat`` to be real directories, so nothing is removed or written through a symlink that
an image planted. Directory modes are applied last (a 0500 directory receives files from
later layers first).
"""

import os
import shutil
import stat
from typing import Dict, Iterable, List, Optional, Tuple

from rootless.fsutil import real_dir_path, remove_tree


def _is_whiteout_mark(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def flatten(layers: Iterable[Tuple[str, dict]], dest: str, unreadable: Optional[List[str]] = None) -> None:
    """Apply ``(diff_dir, record)`` pairs, lowest first, into the empty directory ``dest``."""
    dir_modes: Dict[str, Tuple[int, float]] = {}
    for diff, record in layers:
        for rel in record.get("whiteouts", []):
            target = real_dir_path(dest, rel)
            if target and os.path.lexists(target):
                remove_tree(target)
                _forget(dir_modes, rel)
        for rel in record.get("opaque_dirs", []):
            target = real_dir_path(dest, rel)
            if target and os.path.isdir(target) and not os.path.islink(target):
                for name in os.listdir(target):
                    remove_tree(os.path.join(target, name))
                    _forget(dir_modes, rel + "/" + name if rel else name)
        _copy_layer(diff, dest, dir_modes, unreadable)
    for rel in sorted(dir_modes, key=lambda r: r.count("/"), reverse=True):
        mode, mtime = dir_modes[rel]
        path = os.path.join(dest, rel) if rel else dest
        os.chmod(path, mode)
        os.utime(path, (mtime, mtime))


def _copy_layer(src_root: str, dest: str, dir_modes: Dict[str, Tuple[int, float]],
                unreadable: Optional[List[str]] = None) -> None:
    inodes: Dict[Tuple[int, int], str] = {}
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        src_dir = os.path.join(src_root, rel_dir) if rel_dir else src_root
        try:
            listing = os.scandir(src_dir)
        except PermissionError:
            if unreadable is None or not rel_dir:
                raise
            unreadable.append(rel_dir + "/")
            continue
        with listing as entries:
            for entry in entries:
                rel = os.path.join(rel_dir, entry.name) if rel_dir else entry.name
                st = entry.stat(follow_symlinks=False)
                target = os.path.join(dest, rel)  # parents are real dirs: made by this walk
                if _is_whiteout_mark(st):
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if not (os.path.isdir(target) and not os.path.islink(target)):
                        _clear(target, rel, dir_modes)
                        os.mkdir(target, 0o700)
                    else:
                        os.chmod(target, 0o700)
                    dir_modes[rel] = (stat.S_IMODE(st.st_mode), st.st_mtime)
                    stack.append(rel)
                    continue
                _clear(target, rel, dir_modes)
                try:
                    _copy_entry(entry.path, target, st, inodes)
                except PermissionError:
                    if unreadable is None or not stat.S_ISREG(st.st_mode):
                        raise
                    unreadable.append(rel)
                    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
                    os.chmod(target, stat.S_IMODE(st.st_mode))


def _clear(path: str, rel: str, dir_modes) -> None:
    """Remove what a lower layer put at ``path``; forget its directory modes."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    remove_tree(path)
    if stat.S_ISDIR(st.st_mode):
        _forget(dir_modes, rel)


def _forget(dir_modes, rel: str) -> None:
    prefix = rel + "/"
    for key in [k for k in dir_modes if k == rel or k.startswith(prefix)]:
        del dir_modes[key]


def _copy_entry(src: str, dst: str, st: os.stat_result, inodes) -> None:
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and key in inodes:
        os.link(inodes[key], dst, follow_symlinks=False)
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, dst, follow_symlinks=False)
        os.chmod(dst, stat.S_IMODE(st.st_mode))
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(dst, stat.S_IMODE(st.st_mode))
    else:
        return
    if st.st_nlink > 1:
        inodes[key] = dst
