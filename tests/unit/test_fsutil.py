"""rootless.fsutil: atomic writes, flock semantics, work dirs and robust removal."""

import os
import stat

import pytest

from rootless import fsutil
from rootless.fsutil import FileLock, WorkDir, atomic_write, atomic_write_json, read_json, remove_tree


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def make_locked_down_tree(top):
    """top/a (0500) with files, top/a/b (0000) with a file, top/c (0000) empty, a file 0000."""
    os.makedirs(os.path.join(top, "a", "b"))
    for rel in ("a/f", "a/b/g", "h"):
        with open(os.path.join(top, rel), "w") as f:
            f.write(rel)
    os.mkdir(os.path.join(top, "c"))
    os.chmod(os.path.join(top, "h"), 0)
    os.chmod(os.path.join(top, "a", "b"), 0)
    os.chmod(os.path.join(top, "a"), 0o500)
    os.chmod(os.path.join(top, "c"), 0)


# -- atomic_write ---------------------------------------------------------------------------

def test_atomic_write_content_and_default_mode(tmp_path):
    path = str(tmp_path / "f")
    atomic_write(path, b"hello")
    with open(path, "rb") as f:
        assert f.read() == b"hello"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(str(tmp_path)) == ["f"]


def test_atomic_write_mode_ignores_umask(tmp_path):
    path = str(tmp_path / "f")
    old = os.umask(0o077)
    try:
        atomic_write(path, b"x", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_atomic_write_replaces_existing_file(tmp_path):
    path = str(tmp_path / "f")
    atomic_write(path, b"old content that is longer")
    inode = os.stat(path).st_ino
    atomic_write(path, b"new", mode=0o640)
    with open(path, "rb") as f:
        assert f.read() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert os.stat(path).st_ino != inode     # replaced by rename, not rewritten in place
    assert os.listdir(str(tmp_path)) == ["f"]


def test_atomic_write_replaces_a_symlink_not_its_target(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    link = tmp_path / "link"
    os.symlink(str(target), str(link))
    atomic_write(str(link), b"new")
    assert not os.path.islink(str(link)) and link.read_bytes() == b"new"
    assert target.read_bytes() == b"precious"
    assert sorted(os.listdir(str(tmp_path))) == ["link", "target"]


def test_atomic_write_leaves_no_temporary_on_failure(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "sub").mkdir()
    with pytest.raises(OSError):
        atomic_write(str(d / "sub"), b"cannot replace a directory with a file")
    assert os.listdir(str(d)) == ["sub"]


def test_atomic_write_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    atomic_write("rel", b"r")
    assert (tmp_path / "rel").read_bytes() == b"r" and os.listdir(str(tmp_path)) == ["rel"]


def test_atomic_write_json_and_read_json(tmp_path):
    path = str(tmp_path / "x.json")
    atomic_write_json(path, {"b": [1, 2], "a": None})
    assert read_json(path) == {"a": None, "b": [1, 2]}
    with open(path, "rb") as f:
        assert f.read().endswith(b"\n")
    assert read_json(str(tmp_path / "missing"), default={"d": 1}) == {"d": 1}
    assert read_json(str(tmp_path / "missing")) is None


# -- FileLock -------------------------------------------------------------------------------

def test_exclusive_lock_excludes_everyone(tmp_path):
    path = str(tmp_path / "lock")
    ex = FileLock(path)
    assert ex.acquire() and ex.fd is not None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    fds = open_fds()
    assert FileLock(path, blocking=False).acquire() is False
    assert FileLock(path, shared=True, blocking=False).acquire() is False
    assert open_fds() == fds                         # a refused attempt leaks no descriptor
    ex.release()
    assert ex.fd is None
    other = FileLock(path, blocking=False)
    assert other.acquire() is True
    other.release()


def test_shared_locks_share_and_exclude_writers(tmp_path):
    path = str(tmp_path / "lock")
    s1, s2 = FileLock(path, shared=True), FileLock(path, shared=True, blocking=False)
    assert s1.acquire() and s2.acquire()
    writer = FileLock(path, blocking=False)
    assert writer.acquire() is False
    s1.release()
    assert writer.acquire() is False
    s2.release()
    assert writer.acquire() is True
    assert FileLock(path, shared=True, blocking=False).acquire() is False
    writer.release()


def test_lock_context_manager(tmp_path):
    path = str(tmp_path / "lock")
    with FileLock(path) as lock:
        assert lock.fd is not None
        assert FileLock(path, blocking=False).acquire() is False
    assert lock.fd is None
    probe = FileLock(path, blocking=False)
    assert probe.acquire()
    probe.release()
    lock.release()                                   # releasing twice is harmless


# -- WorkDir --------------------------------------------------------------------------------

def test_workdir_lifecycle(tmp_path):
    tmp = str(tmp_path / "tmp")
    wd = WorkDir(tmp)
    assert os.path.isdir(wd.path) and os.path.dirname(wd.path) == tmp
    assert os.path.basename(wd.path).startswith("work-")
    assert stat.S_IMODE(os.stat(wd.path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o700
    assert os.path.exists(wd.path + ".lock")
    with open(os.path.join(wd.path, "partial"), "w") as f:
        f.write("in progress")
    assert WorkDir.collect_abandoned(tmp) == 0
    assert os.path.exists(os.path.join(wd.path, "partial"))
    wd.close()
    assert os.listdir(tmp) == []


def test_workdir_context_manager_and_prefix(tmp_path):
    tmp = str(tmp_path / "tmp")
    with WorkDir(tmp, prefix="pull-") as wd:
        assert os.path.basename(wd.path).startswith("pull-")
        make_locked_down_tree(os.path.join(wd.path, "tree"))
    assert os.listdir(tmp) == []


def test_abandoned_workdir_is_collected(tmp_path):
    tmp = str(tmp_path / "tmp")
    wd = WorkDir(tmp)
    make_locked_down_tree(os.path.join(wd.path, "tree"))
    wd._lock.release()                               # the owner died without close()
    WorkDir.collect_abandoned(tmp)                   # (its count: see the next test)
    assert not os.path.lexists(wd.path) and not os.path.lexists(wd.path + ".lock")
    assert os.listdir(tmp) == []


def test_collect_counts_each_abandoned_workdir_once(tmp_path):
    tmp = str(tmp_path / "tmp")
    live = WorkDir(tmp)
    for _ in range(8):
        WorkDir(tmp)._lock.release()
    assert WorkDir.collect_abandoned(tmp) == 8
    assert sorted(os.listdir(tmp)) == sorted([os.path.basename(live.path), os.path.basename(live.path) + ".lock"])
    live.close()


def test_collect_keeps_live_workdirs_and_removes_orphan_locks(tmp_path):
    tmp = str(tmp_path / "tmp")
    live = WorkDir(tmp)
    dead = WorkDir(tmp)
    dead._lock.release()
    orphan = os.path.join(tmp, "work-orphan.lock")
    open(orphan, "w").close()
    WorkDir.collect_abandoned(tmp)
    assert sorted(os.listdir(tmp)) == sorted([os.path.basename(live.path), os.path.basename(live.path) + ".lock"])
    assert os.path.isdir(live.path)
    live.close()


def test_collect_on_missing_root(tmp_path):
    assert WorkDir.collect_abandoned(str(tmp_path / "absent")) == 0


# -- remove_tree ----------------------------------------------------------------------------

def test_remove_tree_with_unwritable_directories(tmp_path):
    top = str(tmp_path / "top")
    make_locked_down_tree(top)
    remove_tree(top)
    assert not os.path.lexists(top)
    assert os.listdir(str(tmp_path)) == []


def test_remove_tree_does_not_follow_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"k")
    os.chmod(str(outside), 0o500)
    top = tmp_path / "top"
    top.mkdir()
    os.symlink(str(outside), str(top / "link"))
    os.symlink(str(outside / "keep"), str(top / "filelink"))
    remove_tree(str(top))
    assert not os.path.lexists(str(top))
    assert (outside / "keep").read_bytes() == b"k"
    assert stat.S_IMODE(os.stat(str(outside)).st_mode) == 0o500
    os.chmod(str(outside), 0o700)


def test_remove_tree_of_a_symlink_removes_only_the_link(tmp_path):
    target = tmp_path / "dir"
    target.mkdir()
    (target / "f").write_bytes(b"f")
    os.symlink(str(target), str(tmp_path / "link"))
    remove_tree(str(tmp_path / "link"))
    assert not os.path.lexists(str(tmp_path / "link"))
    assert (target / "f").read_bytes() == b"f"


def test_remove_tree_of_a_file_and_of_nothing(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    os.chmod(str(f), 0)
    remove_tree(str(f))
    assert not f.exists()
    remove_tree(str(tmp_path / "never-existed"))
    assert os.listdir(str(tmp_path)) == []


def test_fsync_dir_tolerates_missing_directory(tmp_path):
    fsutil.fsync_dir(str(tmp_path))
    fsutil.fsync_dir(str(tmp_path / "absent"))
    assert os.path.isdir(str(tmp_path))
