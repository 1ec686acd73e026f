"""Small file-system building blocks: atomic writes, locks, robust removal, work dirs.

Crash safety in the store rests on two rules: (1) anything that becomes visible appears by
one ``rename`` of a complete file or directory; (2) work in progress lives under
``tmp/`` in a directory whose owner holds an ``flock`` on it, so a later command can tell
abandoned work (lock free) from work under way (lock held) without trusting pids.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from rootless import jsonfast


TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Any, Optional


def atomic_write(path: str, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a mix.

    ``durable=False`` skips the fsyncs: for state that is rewritten often and may be lost
    in a power cut but must never be torn (a container's status)."""
    directory = os.path.dirname(path) or "."
    # Not tempfile.mkstemp: importing tempfile (and shutil, random) costs every `run` ~5 ms.
    tmp = os.path.join(directory, ".tmp-%d-%s" % (os.getpid(), os.urandom(6).hex()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        if e.filename is None:  # a failed write names no file: say which (ENOSPC, EDQUOT)
            raise OSError(e.errno, e.strerror, path) from None
        raise
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if durable:
        fsync_dir(directory)


def atomic_write_json(path: str, obj: Any, mode: int = 0o600, durable: bool = True) -> None:
    # One line: with ``indent`` json encodes in Python, not C (0.1 ms a record, four
    # records a run --rm).
    atomic_write(path, jsonfast.dumps(obj, sort_keys=True).encode() + b"\n", mode, durable)


def read_json(path: str, default: Any = None) -> Any:
    try:
        with open(path, "rb") as f:
            return jsonfast.loads(f.read())
    except FileNotFoundError:
        return default


def fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class FileLock:
    """An ``flock`` on a lock file; ``shared`` for readers of a resource, else exclusive."""

    def __init__(self, path: str, shared: bool = False, blocking: bool = True):
        self.path, self.shared, self.blocking = path, shared, blocking
        self.fd: Optional[int] = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        flags = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        if not self.blocking:
            flags |= fcntl.LOCK_NB
        try:
            fcntl.flock(fd, flags)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def tree_size(path: str) -> int:
    """The disk space (allocated blocks) of a file or of every file below a directory;
    symlinks are not followed; what vanishes meanwhile counts nothing."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_blocks * 512
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def remove_tree(path: str) -> None:
    """Remove a file or a tree, including directories whose mode denies us writing.

    Image layers keep their modes (a 0500 directory stays 0500), so a plain rmtree fails
    on them: each directory gets u+rwx before it is emptied. One pass, each directory
    read through a descriptor opened without following symlinks (symlinks are never
    followed), and no shutil: importing it (with bz2 and lzma) cost every ``run --rm``
    ~4 ms. The first failure is raised (PermissionError for files of sub-ids).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    _writable(path, st.st_mode, None)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _empty_dir(fd, os.path.abspath(path))
    finally:
        os.close(fd)
    os.rmdir(path)


def _writable(name: str, mode: int, dir_fd: Optional[int]) -> None:
    """u+rwx on a directory (lstat'ed by the caller) that lacks it; a failure is left to
    the removal that follows, which reports it."""
    if mode & 0o700 != 0o700:
        try:
            os.chmod(name, stat.S_IMODE(mode) | 0o700, dir_fd=dir_fd)
        except OSError:
            pass


def _empty_dir(fd: int, path: str) -> None:
    """Remove everything in the directory ``path``, open at ``fd`` (depth first, one
    descriptor per level, as shutil.rmtree does). An error names the full path."""
    name = ""
    try:
        with os.scandir(fd) as it:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for name, is_dir in entries:
            if not is_dir:
                try:
                    os.unlink(name, dir_fd=fd)
                    continue
                except IsADirectoryError:
                    pass  # replaced by a directory meanwhile
                except FileNotFoundError:
                    continue
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=fd)
                continue
            _writable(name, st.st_mode, fd)
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            try:
                _empty_dir(sub, os.path.join(path, name))
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=fd)
    except OSError as e:
        if e.filename is not None and os.path.isabs(str(e.filename)):
            raise  # from a directory further down, named already
        raise OSError(e.errno, e.strerror, os.path.join(path, name) if name else path) from None


def apparent_size(top: str) -> int:
    """Bytes of the files and symlinks under ``top``, each hard-linked inode once and
    directories not counted: what Docker reports as a container's writable-layer size
    (``ps -s``, the space ``container prune`` reclaims). Unreadable parts count as empty."""
    total, seen, stack = 0, set(), [top]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
                    elif st.st_size and (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        total += st.st_size
        except OSError:
            continue
    return total


class WorkDir:
    """A private directory under ``tmp/`` that exists only while its owner holds its lock.

    ``collect_abandoned`` removes work dirs whose lock is free: their owner died (even by
    ``kill -9``, which releases flocks) before moving the result into place.
    """

    LOCK_SUFFIX = ".lock"

    def __init__(self, tmp_root: str, prefix: str = "work-"):
        os.makedirs(tmp_root, mode=0o700, exist_ok=True)
        # The lock is taken before the directory exists, so a concurrent collector can
        # never see our directory with its lock free.
        while True:
            path = os.path.join(tmp_root, prefix + os.urandom(8).hex())
            lock = FileLock(path + self.LOCK_SUFFIX)
            lock.acquire()
            try:
                os.mkdir(path, 0o700)
                break
            except FileExistsError:
                lock.release()
        self.path, self._lock = path, lock

    def close(self) -> None:
        remove_tree(self.path)
        _unlink_quietly(self.path + self.LOCK_SUFFIX)
        self._lock.release()

    def __enter__(self) -> "WorkDir":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @classmethod
    def collect_abandoned(cls, tmp_root: str) -> int:
        removed = 0
        try:
            names = os.listdir(tmp_root)
        except FileNotFoundError:
            return 0
        for name in names:
            path = os.path.join(tmp_root, name)
            orphan_lock = name.endswith(cls.LOCK_SUFFIX)
            if orphan_lock:
                if os.path.lexists(path[: -len(cls.LOCK_SUFFIX)]) or not os.path.exists(path):
                    continue  # its directory is still there, or it went with it just now
                path = path[: -len(cls.LOCK_SUFFIX)]
            lock = FileLock(path + cls.LOCK_SUFFIX, blocking=False)
            if not lock.acquire():
                continue
            try:
                remove_tree(path)
                _unlink_quietly(path + cls.LOCK_SUFFIX)
                removed += 0 if orphan_lock else 1
            finally:
                lock.release()
        return removed


def real_dir_path(dest: str, rel: str, make: bool = False) -> Optional[str]:
    """``dest/rel`` if every ancestor of it inside ``dest`` is a real directory, else None.

    The one safe join of the project (layer flattening, image owners, ``cp``): nothing is
    ever reached through a symlink below ``dest``. With ``make``, missing ancestors are
    created (0755) instead of giving None: what an extraction needs for a tar stream that
    names a file before (or without) its directory."""
    path = dest
    parts = [p for p in rel.split("/") if p]
    for part in parts[:-1]:
        path = os.path.join(path, part)
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return None
        except FileNotFoundError:
            if not make:
                return None
            os.mkdir(path, 0o755)
    return os.path.join(path, parts[-1]) if parts else dest
