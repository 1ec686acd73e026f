"""cp's tar streams and rules: Docker's table (pure), the writer, and the extractor fed
hostile streams on the host, where nothing outside the destination may change."""

import io
import os
import stat
import tarfile

import pytest

from rootless.errors import NotFound, UsageError
from rootless.runtime import copytar, cprules
from rootless.runtime.cprules import Seen


# -- the rules ------------------------------------------------------------------------------------

@pytest.mark.parametrize("arg, expected", [
    ("c:/etc", ("c", "/etc")), ("c:etc", ("c", "etc")), ("/abs:x", (None, "/abs:x")),
    ("./c:x", (None, "./c:x")), ("plain", (None, "plain")), ("-", (None, "-")), (":x", (None, ":x")),
])
def test_split(arg, expected):
    assert cprules.split(arg) == expected


def test_direction():
    assert cprules.direction("c:etc/", "out") == ("out", "c", "/etc/", "out")
    assert cprules.direction("f", "c:") == ("in", "c", "f", "/")
    with pytest.raises(UsageError, match="between containers"):
        cprules.direction("a:/x", "b:/y")
    with pytest.raises(UsageError, match="at least one container"):
        cprules.direction("a", "b")


@pytest.mark.parametrize("path, is_dir, name", [
    ("/etc", True, "etc"), ("/etc/", True, "etc"), ("/etc/.", True, "."), ("/", True, "."),
    ("/etc/passwd", False, "passwd"), ("d/.", False, "d"), (".", True, "."),
])
def test_source_name(path, is_dir, name):
    assert cprules.source_name(path, is_dir) == name


DIR, FILE, NONE, ORPHAN = Seen(True, True, True), Seen(True, False, True), Seen(False, parent_is_dir=True), Seen(False)


@pytest.mark.parametrize("src, is_dir, dst, seen, expected", [
    ("/f", False, "/out", NONE, ("/", "out")),                  # file -> new name
    ("/f", False, "/file", FILE, ("/", "file")),                # file -> file: overwritten
    ("/f", False, "/dir", DIR, ("/dir", "f")),                  # file -> dir: inside it
    ("/d", True, "/new", NONE, ("/", "new")),                   # dir -> new: created
    ("/d", True, "/dir", DIR, ("/dir", "d")),                   # dir -> dir: inside it
    ("/d/.", True, "/dir", DIR, ("/dir", ".")),                 # dir/. -> its contents
    ("/d/.", True, "/x/new", NONE, ("/x", "new")),
    ("/d", True, "/new/", NONE, ("/", "new")),                  # a directory may make dir/
])
def test_plan(src, is_dir, dst, seen, expected):
    assert cprules.plan(src, is_dir, dst, seen) == expected


def test_plan_errors():
    with pytest.raises(NotFound, match="does not exist"):
        cprules.plan("/f", False, "/nodir/", NONE)
    with pytest.raises(NotFound, match="parent directory /no does not exist"):
        cprules.plan("/f", False, "/no/where", ORPHAN)
    with pytest.raises(UsageError, match="cannot copy the directory"):
        cprules.plan("/d", True, "/file", FILE)


def test_through_link():
    assert cprules.through_link("/a/b", Seen(True, link="/etc")) == "/etc"
    assert cprules.through_link("/a/b", Seen(True, link="../c")) == "/a/../c"
    assert cprules.through_link("/a/b", Seen(True)) is None


# -- the writer -----------------------------------------------------------------------------------

def write(path, name, **kw) -> dict:
    buf = io.BytesIO()
    copytar.write_tree(buf, str(path), name, **kw)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_writer_names_links_and_ids(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("f")
    os.link(src / "sub" / "f", src / "hard")
    os.symlink("/etc", src / "link")
    os.mkfifo(src / "fifo")
    got = write(src, "top", ids=lambda u, g: (7, 8))
    assert set(got) == {"top", "top/sub", "top/sub/f", "top/hard", "top/link", "top/fifo"}, "no /etc"
    assert got["top/link"].issym() and got["top/link"].linkname == "/etc"
    assert got["top/hard"].islnk() or got["top/sub/f"].islnk()
    assert got["top/fifo"].isfifo()
    assert {(m.uid, m.gid, m.uname, m.gname) for m in got.values()} == {(7, 8, "", "")}
    assert set(write(src, "")) == {"sub", "sub/f", "hard", "link", "fifo"}
    assert "./sub/f" in write(src, ".")
    assert set(write(src, "", skip_contents=("sub",))) == {"sub", "hard", "link", "fifo"}
    os.symlink("sub", src / "rel")
    assert write(src / "rel", "l", follow=True)["l"].isdir()
    assert write(src / "rel", "l")["l"].issym()


# -- the extractor --------------------------------------------------------------------------------

def tar_of(*entries) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            data = b""
            for key, value in extra.items():
                if key == "data":
                    data = value
                else:
                    setattr(info, key, value)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


REG, DIRT, SYM, LNK, CHR = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE


@pytest.fixture
def box(tmp_path):
    """A destination inside a directory whose other entries must never change."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("untouched")
    dest = tmp_path / "dest"
    dest.mkdir()
    yield dest
    assert sorted(os.listdir(tmp_path)) == ["dest", "outside"]
    assert os.listdir(outside) == ["victim"] and (outside / "victim").read_text() == "untouched"


@pytest.mark.parametrize("entries", [
    [("../outside/victim", REG, {"data": b"x"})],
    [("a/../../outside/victim", REG, {"data": b"x"})],
    [("l", SYM, {"linkname": "../outside"}), ("l/victim", REG, {"data": b"x"})],
    [("l", SYM, {"linkname": "../outside"}), ("l/new", DIRT, {})],
    [("h", LNK, {"linkname": "../outside/victim"})],
    [("h", LNK, {"linkname": "notmade"})],
    [("s", SYM, {"linkname": "../outside/victim"}), ("h", LNK, {"linkname": "s"})],
], ids=["climb", "climb-inside", "through-symlink", "dir-through-symlink", "hardlink-out",
        "hardlink-unknown", "hardlink-to-symlink"])
def test_hostile_streams_are_refused(box, entries):
    with pytest.raises(copytar.Refused, match="refusing the copy"):
        copytar.extract(tar_of(*entries), str(box))


def test_a_symlink_in_place_is_replaced_not_followed(box):
    os.symlink("../outside/victim", box / "f")
    copytar.extract(tar_of(("f", REG, {"data": b"new"})), str(box))
    assert not os.path.islink(box / "f") and (box / "f").read_bytes() == b"new"


def test_absolute_names_stay_inside_and_top_is_enforced(box):
    copytar.extract(tar_of(("/abs", REG, {"data": b"in"})), str(box))
    assert (box / "abs").read_bytes() == b"in"
    with pytest.raises(copytar.Refused, match="not under 'top'"):
        copytar.extract(tar_of(("top", DIRT, {}), ("other", REG, {"data": b"x"})), str(box), top="top")
    assert not (box / "other").exists()


def test_devices_are_skipped_and_set_id_bits_dropped(box):
    copytar.extract(tar_of(("null", CHR, {"devmajor": 1, "devminor": 3}),
                           ("suid", REG, {"data": b"#!", "mode": 0o6755}),
                           ("d", DIRT, {"mode": 0o2775})), str(box))
    assert not (box / "null").exists()
    assert stat.S_IMODE(os.stat(box / "suid").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(box / "d").st_mode) == 0o775
    copytar.extract(tar_of(("kept", REG, {"data": b"#!", "mode": 0o4755})), str(box), keep_setid=True)
    assert stat.S_IMODE(os.stat(box / "kept").st_mode) == 0o4755


def test_directories_and_files_do_not_replace_each_other(box):
    (box / "d").mkdir()
    (box / "f").write_text("f")
    with pytest.raises(copytar.Refused, match="cannot overwrite directory"):
        copytar.extract(tar_of(("d", REG, {"data": b"x"})), str(box))
    with pytest.raises(copytar.Refused, match="cannot overwrite non-directory"):
        copytar.extract(tar_of(("f", DIRT, {})), str(box))


def test_round_trip_keeps_modes_links_and_times(tmp_path):
    src = tmp_path / "src"
    (src / "ro").mkdir(parents=True)
    (src / "ro" / "f").write_text("content")
    os.utime(src / "ro" / "f", (1000000000, 1000000000))
    os.chmod(src / "ro", 0o555)
    os.symlink("ro/f", src / "link")
    os.link(src / "ro" / "f", src / "hard")
    buf = io.BytesIO()
    copytar.write_tree(buf, str(src), "copy")
    buf.seek(0)
    dest = tmp_path / "dest"
    dest.mkdir()
    copytar.extract(buf, str(dest), top="copy")
    out = dest / "copy"
    assert (out / "ro" / "f").read_text() == "content" and os.readlink(out / "link") == "ro/f"
    assert os.stat(out / "ro" / "f").st_mtime == 1000000000
    assert stat.S_IMODE(os.stat(out / "ro").st_mode) == 0o555
    assert os.stat(out / "hard").st_ino == os.stat(out / "ro" / "f").st_ino
    os.chmod(src / "ro", 0o755)
    os.chmod(out / "ro", 0o755)


def test_a_file_that_shrinks_is_padded(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    fd = os.open(str(f), os.O_RDONLY)
    try:
        exact = copytar._Exact(fd, 6)
        assert exact.read(10) == b"abc" and exact.read(10) == b"\0\0\0" and exact.read(10) == b""
    finally:
        os.close(fd)


def test_a_truncated_stream_is_refused(box):
    data = tar_of(("big", REG, {"data": b"x" * 5000})).getvalue()[:1536]
    with pytest.raises(copytar.Refused):
        copytar.extract(io.BytesIO(data), str(box))
