"""rootless.storage.layers: the safe unpack of hostile layer tar streams, on real directories."""

import errno
import io
import os
import shutil
import stat
import tarfile
import tempfile

import pytest

from imagetools import tar_bytes, unpack_growing
from rootless.errors import InvalidImage
from rootless.storage import layers
from rootless.storage.layers import LayerRecord, LayerUnpacker, classify_whiteout, member_path

MODE = {"name": "stream"}


@pytest.fixture(autouse=True, params=["stream", "region", "growing"])
def unpack_mode(request):
    """Every test runs three times: through the streaming unpack (compressed or piped
    layers), through unpack_region (an uncompressed layer inside a local archive file), and
    through unpack_region following a file still being written (a layer as a pull inflates
    it)."""
    MODE["name"] = request.param
    yield request.param


def unpack(fileobj, dest, **kw):
    if MODE["name"] == "stream":
        return layers.unpack(fileobj, dest, **kw)
    if MODE["name"] == "growing":
        return unpack_growing(fileobj.read(), dest, **kw)
    return unpack_at_offset(fileobj.read(), dest, **kw)


def unpack_at_offset(data, dest, **kw):
    """The layer placed inside a larger file, between other bytes, as in an archive."""
    with tempfile.TemporaryFile() as f:
        f.write(b"P" * 1536 + data + b"Q" * 4096)
        f.flush()
        return layers.unpack_region(f.fileno(), 1536, len(data), dest, **kw)


def _force_remove(path):
    for top, dirs, _ in os.walk(path):
        for d in dirs:
            p = os.path.join(top, d)
            if not os.path.islink(p):
                os.chmod(p, 0o700)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def area(tmp_path):
    """tmp_path/layer (the empty destination) and tmp_path/outside (must stay untouched)."""
    (tmp_path / "layer").mkdir()
    (tmp_path / "outside").mkdir()
    yield tmp_path
    _force_remove(str(tmp_path))


def run(area, entries):
    dest = str(area / "layer")
    return dest, unpack(io.BytesIO(tar_bytes(entries)), dest)


def outside_untouched(area):
    return os.listdir(str(area / "outside")) == [] and sorted(os.listdir(str(area))) == ["layer", "outside"]


def user_xattrs(path):
    """Extended attributes, ignoring security.* labels the host may add by itself."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return []
        raise
    return [n for n in names if not n.startswith("security.")]


# -- member_path / classify_whiteout (pure) ---------------------------------------------

@pytest.mark.parametrize("name, rel", [
    ("etc/passwd", "etc/passwd"),
    ("/etc/passwd", "etc/passwd"),
    ("//etc//passwd", "etc/passwd"),
    ("./a", "a"),
    ("./a/./b/", "a/b"),
    ("a/../b", "b"),
    ("a/b/..", "a"),
    ("a/b/../../c", "c"),
    (".", ""),
    ("./", ""),
    ("/", ""),
    ("a/..", ""),
    ("..foo", "..foo"),
    ("a/..b", "a/..b"),
])
def test_member_path_normalises(name, rel):
    assert member_path(name) == rel


@pytest.mark.parametrize("name", [
    "..", "../x", "./../x", "a/../../x", "/../x", "/a/../../x", "a/b/../../../x", "../",
])
def test_member_path_refuses_escape(name):
    with pytest.raises(InvalidImage):
        member_path(name)


def test_member_path_refuses_nul():
    with pytest.raises(InvalidImage):
        member_path("a\0b")


@pytest.mark.parametrize("rel, expected", [
    ("a/.wh..wh..opq", ("opaque", "a")),
    (".wh..wh..opq", ("opaque", "")),
    ("a/b/.wh.c", ("whiteout", "a/b/c")),
    (".wh.c", ("whiteout", "c")),
    (".wh..hidden", ("whiteout", ".hidden")),
    ("a/.wh..wh.plnk", ("meta", "")),
    ("a/.wh..wh.aufs", ("meta", "")),
    ("a/b", ("", "a/b")),
    ("a/x.wh.b", ("", "a/x.wh.b")),
    (".wh", ("", ".wh")),
])
def test_classify_whiteout(rel, expected):
    assert classify_whiteout(rel) == expected


@pytest.mark.parametrize("rel", ["a/.wh.", "a/.wh..", "a/.wh...", ".wh."])
def test_classify_whiteout_refuses_malformed(rel):
    with pytest.raises(InvalidImage):
        classify_whiteout(rel)


def test_record_to_json():
    rec = LayerRecord(whiteouts=["a"], opaque_dirs=["d"], owners={"f": [1, 2]},
                      skipped_devices=["dev/null"], content_size=5, entries=7, whiteout_marks=False)
    assert rec.to_json() == {"whiteouts": ["a"], "opaque_dirs": ["d"], "owners": {"f": [1, 2]},
                             "skipped_devices": ["dev/null"], "content_size": 5, "entries": 7,
                             "whiteout_marks": False, "reproducible": False}


# -- regular content ------------------------------------------------------------------------

def test_files_dirs_modes_and_mtimes(area):
    dest, rec = run(area, [
        {"name": "bin", "type": "dir", "mode": 0o755, "mtime": 1500000000},
        {"name": "bin/tool", "data": b"#!/bin/sh\n", "mode": 0o755, "mtime": 1600000000},
        {"name": "etc/conf", "data": b"key=value\n", "mode": 0o640, "mtime": 1600000001},
        {"name": "/abs/file", "data": b"abs", "mode": 0o600},
        {"name": "./dot/file", "data": b"dot", "mode": 0o444},
        {"name": "empty", "data": b"", "mode": 0o644},
        {"name": "setuid", "data": b"s", "mode": 0o4755},
    ])
    def mode(rel):
        return stat.S_IMODE(os.lstat(os.path.join(dest, rel)).st_mode)

    def read(rel):
        with open(os.path.join(dest, rel), "rb") as f:
            return f.read()
    assert sorted(os.listdir(dest)) == ["abs", "bin", "dot", "empty", "etc", "setuid"]
    assert read("bin/tool") == b"#!/bin/sh\n" and mode("bin/tool") == 0o755
    assert read("etc/conf") == b"key=value\n" and mode("etc/conf") == 0o640
    assert read("abs/file") == b"abs" and mode("abs/file") == 0o600
    assert read("dot/file") == b"dot" and mode("dot/file") == 0o444
    assert read("empty") == b"" and mode("empty") == 0o644
    assert mode("setuid") == 0o4755
    assert os.stat(os.path.join(dest, "bin/tool")).st_mtime == 1600000000
    assert os.stat(os.path.join(dest, "etc/conf")).st_mtime == 1600000001
    # A declared directory gets its mode and time after its content was written.
    assert mode("bin") == 0o755 and os.stat(os.path.join(dest, "bin")).st_mtime == 1500000000
    # Implicit parents are 0755, as Docker makes them.
    assert mode("etc") == 0o755 and mode("abs") == 0o755
    assert rec.entries == 7
    assert rec.content_size == len(b"#!/bin/sh\n") + len(b"key=value\n") + 3 + 3 + 0 + 1
    assert rec.whiteouts == [] and rec.opaque_dirs == [] and rec.skipped_devices == [] and rec.owners == {}
    # Squashed ownership: everything belongs to the caller.
    assert os.stat(os.path.join(dest, "etc/conf")).st_uid == os.getuid()


def test_root_directory_entry_sets_the_root_mode(area):
    dest, rec = run(area, [{"name": "./", "type": "dir", "mode": 0o751, "mtime": 1400000000},
                           {"name": "f", "data": b"x"}])
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o751
    assert os.stat(dest).st_mtime == 1400000000


def test_read_only_directory_still_receives_its_files(area):
    dest, _ = run(area, [
        {"name": "ro", "type": "dir", "mode": 0o500},
        {"name": "ro/f", "data": b"inside", "mode": 0o400},
        {"name": "ro/sub", "type": "dir", "mode": 0o555},
        {"name": "ro/sub/g", "data": b"deeper"},
        {"name": "none", "type": "dir", "mode": 0o000},
        {"name": "none/h", "data": b"hidden"},
    ])
    assert stat.S_IMODE(os.stat(os.path.join(dest, "ro")).st_mode) == 0o500
    assert stat.S_IMODE(os.stat(os.path.join(dest, "ro/sub")).st_mode) == 0o555
    assert stat.S_IMODE(os.stat(os.path.join(dest, "none")).st_mode) == 0o000
    os.chmod(os.path.join(dest, "none"), 0o700)
    with open(os.path.join(dest, "ro/f"), "rb") as f:
        assert f.read() == b"inside"
    with open(os.path.join(dest, "ro/sub/g"), "rb") as f:
        assert f.read() == b"deeper"
    with open(os.path.join(dest, "none/h"), "rb") as f:
        assert f.read() == b"hidden"


def test_zero_runs_become_holes(area):
    size = 4 << 20
    dest, rec = run(area, [{"name": "zeros", "data": bytes(size)},
                           {"name": "mixed", "data": b"head" + bytes(3 << 20) + b"tail"}])
    st = os.stat(os.path.join(dest, "zeros"))
    assert st.st_size == size
    assert st.st_blocks * 512 < size // 16
    with open(os.path.join(dest, "zeros"), "rb") as f:
        assert f.read() == bytes(size)
    st = os.stat(os.path.join(dest, "mixed"))
    assert st.st_size == 8 + (3 << 20)
    assert st.st_blocks * 512 < st.st_size // 2
    with open(os.path.join(dest, "mixed"), "rb") as f:
        assert f.read() == b"head" + bytes(3 << 20) + b"tail"
    assert rec.content_size == size + 8 + (3 << 20)


def test_empty_tar_is_an_empty_layer(area):
    dest = str(area / "layer")
    rec = unpack(io.BytesIO(bytes(1024)), dest)
    assert os.listdir(dest) == [] and rec.entries == 0


def test_unpacker_class_and_debug_messages(area):
    messages = []
    dest = str(area / "layer")
    rec = LayerUnpacker(dest, debug=messages.append).unpack(
        io.BytesIO(tar_bytes([{"name": "dev/null", "type": "chr"}])))
    assert rec.skipped_devices == ["dev/null"]
    assert any("/dev/null" in m for m in messages)


# -- links, special files -----------------------------------------------------------------------

def test_symlinks_are_kept_verbatim_and_not_followed(area):
    dest, _ = run(area, [
        {"name": "passwd", "type": "symlink", "target": "/etc/passwd", "mtime": 1600000000},
        {"name": "rel", "type": "symlink", "target": "../../outside"},
        {"name": "dangling", "type": "symlink", "target": "nowhere/at/all"},
    ])
    assert os.readlink(os.path.join(dest, "passwd")) == "/etc/passwd"
    assert os.readlink(os.path.join(dest, "rel")) == "../../outside"
    assert os.readlink(os.path.join(dest, "dangling")) == "nowhere/at/all"
    assert os.lstat(os.path.join(dest, "passwd")).st_mtime == 1600000000
    assert outside_untouched(area)


def test_member_through_a_symlink_of_the_layer_is_refused(area):
    target = str(area / "outside")
    with pytest.raises(InvalidImage):
        run(area, [{"name": "evil", "type": "symlink", "target": target},
                   {"name": "evil/file", "data": b"pwned"}])
    assert outside_untouched(area)


@pytest.mark.parametrize("second", [
    {"name": "evil/sub/file", "data": b"pwned"},
    {"name": "evil/dir", "type": "dir"},
    {"name": "evil/link", "type": "symlink", "target": "/"},
    {"name": "evil/fifo", "type": "fifo"},
    {"name": "evil/.wh.x", "data": b""},
    {"name": "evil/.wh..wh..opq", "data": b""},
], ids=["file", "dir", "symlink", "fifo", "whiteout", "opaque"])
def test_nothing_is_written_through_a_symlink(area, second):
    with pytest.raises(InvalidImage):
        run(area, [{"name": "evil", "type": "symlink", "target": str(area / "outside")}, second])
    assert outside_untouched(area)


def test_member_below_a_file_is_refused(area):
    with pytest.raises(InvalidImage):
        run(area, [{"name": "f", "data": b"x"}, {"name": "f/g", "data": b"y"}])


def test_file_replaces_symlink_instead_of_writing_through_it(area):
    target = area / "outside" / "target"
    dest, _ = run(area, [{"name": "x", "type": "symlink", "target": str(target)},
                         {"name": "x", "data": b"replaced"}])
    assert not os.path.islink(os.path.join(dest, "x"))
    with open(os.path.join(dest, "x"), "rb") as f:
        assert f.read() == b"replaced"
    assert outside_untouched(area)


def test_directory_replaces_symlink_and_receives_files_inside_the_layer(area):
    dest, _ = run(area, [{"name": "s", "type": "symlink", "target": str(area / "outside")},
                         {"name": "s", "type": "dir"},
                         {"name": "s/f", "data": b"in"}])
    assert os.path.isdir(os.path.join(dest, "s")) and not os.path.islink(os.path.join(dest, "s"))
    with open(os.path.join(dest, "s/f"), "rb") as f:
        assert f.read() == b"in"
    assert outside_untouched(area)


@pytest.mark.parametrize("target", ["a", "./a", "/a"])
def test_hardlink_to_a_file_of_the_layer(area, target):
    dest, rec = run(area, [{"name": "a", "data": b"shared"},
                           {"name": "dir/b", "type": "hardlink", "target": target}])
    sa, sb = os.stat(os.path.join(dest, "a")), os.stat(os.path.join(dest, "dir/b"))
    assert sa.st_ino == sb.st_ino and sa.st_nlink == 2
    assert rec.content_size == 6


def test_hardlink_to_a_symlink_links_the_symlink_itself(area):
    dest, _ = run(area, [{"name": "s", "type": "symlink", "target": "/etc/passwd"},
                         {"name": "h", "type": "hardlink", "target": "s"}])
    assert os.path.islink(os.path.join(dest, "h"))
    assert os.readlink(os.path.join(dest, "h")) == "/etc/passwd"


@pytest.mark.parametrize("target", [
    "../../etc/passwd", "../outside/x", "/etc/passwd", "etc/passwd", "nonexistent", "d", "", "later",
])
def test_hardlink_outside_the_layer_or_to_nothing_is_refused(area, target):
    with pytest.raises(InvalidImage):
        run(area, [{"name": "d", "type": "dir"},
                   {"name": "h", "type": "hardlink", "target": target},
                   {"name": "later", "data": b"too late"}])
    assert not os.path.lexists(str(area / "layer" / "h"))
    assert outside_untouched(area)


def test_fifo_is_kept_with_its_mode(area):
    old = os.umask(0o022)
    try:
        dest, _ = run(area, [{"name": "run/pipe", "type": "fifo", "mode": 0o666},
                             {"name": "run/pipe2", "type": "fifo", "mode": 0o600}])
    finally:
        os.umask(old)
    st = os.lstat(os.path.join(dest, "run/pipe"))
    assert stat.S_ISFIFO(st.st_mode)
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "run/pipe2")).st_mode) == 0o600
    # The layer's mode, not the mode filtered by the caller's umask.
    assert stat.S_IMODE(st.st_mode) == 0o666


def test_device_nodes_are_skipped_and_reported(area):
    blk = tarfile.TarInfo("dev/sda")
    blk.type, blk.devmajor, blk.devminor = tarfile.BLKTYPE, 8, 0
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(blk)
    raw = tar_bytes([{"name": "dev", "type": "dir"},
                     {"name": "dev/null", "type": "chr", "major": 1, "minor": 3},
                     {"name": "dev/zero", "type": "chr", "major": 1, "minor": 5}])
    dest = str(area / "layer")
    rec = unpack(io.BytesIO(raw), dest)
    assert os.listdir(os.path.join(dest, "dev")) == []
    assert rec.skipped_devices == ["dev/null", "dev/zero"]
    (area / "layer2").mkdir()
    rec = unpack(io.BytesIO(buf.getvalue()), str(area / "layer2"))
    assert rec.skipped_devices == ["dev/sda"] and not os.path.lexists(str(area / "layer2" / "dev" / "sda"))


# -- whiteouts ------------------------------------------------------------------------------------

def test_whiteout_becomes_an_overlay_whiteout(area):
    dest, rec = run(area, [{"name": "etc", "type": "dir"},
                           {"name": "etc/.wh.passwd", "data": b""},
                           {"name": "gone/deeper/.wh.x", "data": b""}])
    assert rec.whiteouts == ["etc/passwd", "gone/deeper/x"]
    assert not os.path.lexists(os.path.join(dest, "etc/.wh.passwd"))
    for rel in ("etc/passwd", "gone/deeper/x"):
        path = os.path.join(dest, rel)
        if rec.whiteout_marks:
            st = os.lstat(path)
            assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        else:
            assert not os.path.lexists(path)
    assert outside_untouched(area)


def test_whiteout_does_not_hide_an_entry_of_the_same_layer(area):
    dest, rec = run(area, [{"name": "a", "data": b"kept"}, {"name": ".wh.a", "data": b""}])
    assert rec.whiteouts == ["a"]
    with open(os.path.join(dest, "a"), "rb") as f:
        assert f.read() == b"kept"


def test_file_after_whiteout_replaces_the_mark(area):
    dest, rec = run(area, [{"name": ".wh.a", "data": b""}, {"name": "a", "data": b"new"}])
    assert rec.whiteouts == ["a"]
    with open(os.path.join(dest, "a"), "rb") as f:
        assert f.read() == b"new"


@pytest.mark.parametrize("name", ["d/.wh.", "d/.wh..", "d/.wh..."])
def test_malformed_whiteout_is_refused(area, name):
    with pytest.raises(InvalidImage):
        run(area, [{"name": name, "data": b""}])


def test_opaque_marker(area):
    dest, rec = run(area, [{"name": "d", "type": "dir", "mode": 0o750},
                           {"name": "d/.wh..wh..opq", "data": b""},
                           {"name": "d/new", "data": b"n"},
                           {"name": "implicit/.wh..wh..opq", "data": b""}])
    assert rec.opaque_dirs == ["d", "implicit"]
    assert sorted(os.listdir(os.path.join(dest, "d"))) == ["new"]
    assert os.listdir(os.path.join(dest, "implicit")) == []
    assert stat.S_IMODE(os.stat(os.path.join(dest, "d")).st_mode) == 0o750
    if rec.whiteout_marks:
        assert os.getxattr(os.path.join(dest, "d"), "user.overlay.opaque") == b"y"
        assert os.getxattr(os.path.join(dest, "implicit"), "user.overlay.opaque") == b"y"


def test_aufs_metadata_entries_are_ignored(area):
    dest, rec = run(area, [{"name": ".wh..wh.plnk", "type": "dir"},
                           {"name": ".wh..wh.aufs", "data": b""},
                           {"name": "f", "data": b"x"}])
    assert os.listdir(dest) == ["f"]
    assert rec.whiteouts == [] and rec.opaque_dirs == []


def test_xattrs_from_the_layer_are_not_applied(area):
    dest, rec = run(area, [
        {"name": "d", "type": "dir", "pax": {"SCHILY.xattr.user.overlay.opaque": "y"}},
        {"name": "f", "data": b"x", "pax": {"SCHILY.xattr.trusted.overlay.whiteout": "y",
                                            "SCHILY.xattr.user.overlay.redirect": "/etc",
                                            "SCHILY.xattr.user.note": "hello"}},
        {"name": "g", "data": b"", "pax": {"SCHILY.xattr.trusted.overlay.opaque": "y"}},
    ])
    for rel in ("d", "f", "g"):
        assert user_xattrs(os.path.join(dest, rel)) == []
    assert user_xattrs(dest) == []
    assert rec.opaque_dirs == [] and rec.whiteouts == []


# -- replacement within one layer ---------------------------------------------------------------

def test_file_replaced_by_directory(area):
    dest, _ = run(area, [{"name": "x", "data": b"file"},
                         {"name": "x", "type": "dir", "mode": 0o711},
                         {"name": "x/y", "data": b"child"}])
    assert os.path.isdir(os.path.join(dest, "x"))
    assert stat.S_IMODE(os.stat(os.path.join(dest, "x")).st_mode) == 0o711
    with open(os.path.join(dest, "x/y"), "rb") as f:
        assert f.read() == b"child"


def test_directory_replaced_by_file(area):
    dest, _ = run(area, [{"name": "d", "type": "dir", "mode": 0o500},
                         {"name": "d/sub", "type": "dir", "mode": 0o500},
                         {"name": "d/sub/f", "data": b"old"},
                         {"name": "d", "data": b"now a file", "mode": 0o600}])
    assert os.path.isfile(os.path.join(dest, "d"))
    assert stat.S_IMODE(os.stat(os.path.join(dest, "d")).st_mode) == 0o600
    with open(os.path.join(dest, "d"), "rb") as f:
        assert f.read() == b"now a file"
    assert os.listdir(dest) == ["d"]


def test_member_below_a_replaced_directory_is_refused(area):
    with pytest.raises(InvalidImage):
        run(area, [{"name": "d", "type": "dir"}, {"name": "d/f", "data": b"1"},
                   {"name": "d", "data": b"file"}, {"name": "d/g", "data": b"2"}])


def test_later_file_replaces_earlier_file(area):
    dest, _ = run(area, [{"name": "f", "data": b"first", "mode": 0o600},
                         {"name": "f", "data": b"second", "mode": 0o644}])
    with open(os.path.join(dest, "f"), "rb") as f:
        assert f.read() == b"second"
    assert stat.S_IMODE(os.stat(os.path.join(dest, "f")).st_mode) == 0o644


def test_directory_entry_repeated_keeps_content_and_takes_last_mode(area):
    dest, _ = run(area, [{"name": "d", "type": "dir", "mode": 0o700},
                         {"name": "d/f", "data": b"x"},
                         {"name": "d", "type": "dir", "mode": 0o755}])
    assert os.listdir(os.path.join(dest, "d")) == ["f"]
    assert stat.S_IMODE(os.stat(os.path.join(dest, "d")).st_mode) == 0o755


# -- owners --------------------------------------------------------------------------------------

def test_owners_other_than_root_are_recorded(area):
    dest, rec = run(area, [
        {"name": "home/u", "type": "dir", "uid": 1000, "gid": 100},
        {"name": "home/u/f", "data": b"x", "uid": 1000, "gid": 1000},
        {"name": "etc/shadow", "data": b"s", "uid": 0, "gid": 42},
        {"name": "rootfile", "data": b"r", "uid": 0, "gid": 0},
        {"name": "link", "type": "symlink", "target": "rootfile", "uid": 7, "gid": 0},
    ])
    assert rec.owners == {"home/u": [1000, 100], "home/u/f": [1000, 1000],
                          "etc/shadow": [0, 42], "link": [7, 0]}
    assert os.stat(os.path.join(dest, "home/u/f")).st_uid == os.getuid()


def test_owners_follow_the_entry_that_replaced_an_earlier_one(area):
    # The record describes the layer's final tree: a replaced entry's owner must go.
    _, rec = run(area, [{"name": "a", "data": b"1", "uid": 1000, "gid": 1000},
                        {"name": "a", "data": b"2", "uid": 0, "gid": 0},
                        {"name": "d", "type": "dir", "uid": 5, "gid": 5},
                        {"name": "d/f", "data": b"x", "uid": 6, "gid": 6},
                        {"name": "d", "data": b"file now"}])
    assert rec.owners == {}


# -- broken streams --------------------------------------------------------------------------------

def _two_files():
    data = tar_bytes([{"name": "a", "data": b"x" * 10}, {"name": "b", "data": b"y" * 600}])
    # ustar layout here: a's header @0, data @512, b's header @1024, data @1536..2560.
    assert data[1024:1025] == b"b"
    return data


@pytest.mark.parametrize("cut", [517, 1536, 1536 + 100, 2047], ids=["in-data-a", "no-data-b", "in-data-b", "in-last-block"])
def test_truncated_tar_is_refused(area, cut):
    with pytest.raises(InvalidImage):
        unpack(io.BytesIO(_two_files()[:cut]), str(area / "layer"))


@pytest.mark.parametrize("cut", [1024 + 100, 1024 + 511], ids=["header+100", "header+511"])
def test_tar_truncated_inside_a_header_is_refused(area, cut):
    with pytest.raises(InvalidImage):
        unpack(io.BytesIO(_two_files()[:cut]), str(area / "layer"))


@pytest.mark.parametrize("data", [
    b"this is not a tar archive\n" * 100,
    bytes(range(256)) * 8,
    b"\x1f\x8b\x08\x00" + bytes(2000),
    b"x" * 100,
], ids=["text", "bytes", "gzip-magic", "short"])
def test_garbage_is_refused(area, data):
    with pytest.raises(InvalidImage):
        unpack(io.BytesIO(data), str(area / "layer"))
    assert outside_untouched(area)


def test_escaping_member_refuses_the_layer(area):
    with pytest.raises(InvalidImage):
        run(area, [{"name": "ok", "data": b"1"}, {"name": "../escaped", "data": b"2"}])
    assert not os.path.lexists(str(area / "escaped"))
    assert outside_untouched(area)
