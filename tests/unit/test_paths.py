"""rootless.paths: where things live, from explicit options and the environment."""

import os
import stat

import pytest

from rootless import paths
from rootless.errors import StoreError

HEX = "0123456789abcdef" * 4


def test_digest_hex():
    assert paths.digest_hex("sha256:" + HEX) == HEX


@pytest.mark.parametrize("digest", [
    "", HEX, "sha256:", "sha256:" + HEX[:-1], "sha256:" + HEX + "0", "sha256:" + HEX.upper(),
    "sha512:" + HEX, "sha256:" + "g" * 64, "sha256:../../../../etc/passwd",
    "sha256:" + HEX[:-3] + "/..", "sha256:" + HEX + "\n",
])
def test_digest_hex_refuses(digest):
    with pytest.raises(StoreError):
        paths.digest_hex(digest)


def test_paths_layout(tmp_path):
    p = paths.Paths(root=str(tmp_path), run="/run/x")
    assert p.blobs == os.path.join(str(tmp_path), "blobs", "sha256")
    assert p.blob("sha256:" + HEX) == os.path.join(str(tmp_path), "blobs", "sha256", HEX)
    assert p.layer("sha256:" + HEX) == os.path.join(str(tmp_path), "layers", HEX)
    assert p.tmp == os.path.join(str(tmp_path), "tmp")
    assert p.images_index == os.path.join(str(tmp_path), "images.json")
    with pytest.raises(StoreError):
        p.blob("sha256:../../escape")


def test_fs_type():
    kind = paths.fs_type("/")
    assert isinstance(kind, str) and kind and kind != "unknown"


def test_fs_type_of_a_path_that_does_not_exist(tmp_path):
    assert paths.fs_type(str(tmp_path / "not" / "yet")) == paths.fs_type(str(tmp_path))


def test_resolve_with_explicit_root(tmp_path):
    env = {"ROOTLESS_ROOT": "/elsewhere", "XDG_RUNTIME_DIR": str(tmp_path)}
    p = paths.resolve(str(tmp_path / "root"), env=env)
    assert p.root == str(tmp_path / "root")
    assert p.root_reason == "from --root"
    assert p.run == os.path.join(str(tmp_path), "rootless")
    assert not os.path.exists(str(tmp_path / "root"))          # resolve creates nothing


def test_resolve_makes_a_relative_root_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    assert paths.resolve("store", env={}).root == str(tmp_path / "store")


def test_default_root_from_rootless_root(tmp_path):
    env = {"ROOTLESS_ROOT": str(tmp_path / "r"), "XDG_DATA_HOME": str(tmp_path / "data")}
    assert paths.default_root(env) == (str(tmp_path / "r"), "from ROOTLESS_ROOT")
    p = paths.resolve(None, env=env)
    assert p.root == str(tmp_path / "r") and p.root_reason == "from ROOTLESS_ROOT"


def test_default_root_from_xdg_data_home(tmp_path):
    env = {"ROOTLESS_ROOT": "", "XDG_DATA_HOME": str(tmp_path)}
    assert paths.default_root(env) == (os.path.join(str(tmp_path), "rootless"), "default")


def test_default_root_from_home_in_the_given_env(tmp_path):
    assert paths.default_root({"HOME": str(tmp_path)}) == (
        os.path.join(str(tmp_path), ".local", "share", "rootless"), "default")


def test_default_run_dir_fallback():
    fallback = "/tmp/rootless-run-%d" % os.getuid()
    assert paths.default_run_dir({}) == fallback
    assert paths.default_run_dir({"XDG_RUNTIME_DIR": ""}) == fallback
    assert paths.default_run_dir({"XDG_RUNTIME_DIR": "/nonexistent/run/dir"}) == fallback


def test_default_run_dir_uses_our_xdg_runtime_dir(tmp_path):
    assert paths.default_run_dir({"XDG_RUNTIME_DIR": str(tmp_path)}) == os.path.join(str(tmp_path), "rootless")


def test_default_run_dir_ignores_someone_elses_runtime_dir(tmp_path):
    if os.getuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        os.chown(str(theirs), 65534, 65534)
        theirs = str(theirs)
    else:
        theirs = "/"
    assert os.stat(theirs).st_uid != os.getuid()
    assert paths.default_run_dir({"XDG_RUNTIME_DIR": theirs}) == "/tmp/rootless-run-%d" % os.getuid()


def test_ensure_private_dir(tmp_path):
    d = str(tmp_path / "a" / "b")
    paths.ensure_private_dir(d)
    assert os.path.isdir(d) and stat.S_IMODE(os.stat(d).st_mode) == 0o700
    paths.ensure_private_dir(d)                     # idempotent


def test_ensure_private_dir_refuses_symlink_and_file(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(str(real), str(tmp_path / "link"))
    with pytest.raises(StoreError):
        paths.ensure_private_dir(str(tmp_path / "link"))
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StoreError):
        paths.ensure_private_dir(str(tmp_path / "file"))


def test_notice_once(tmp_path, capsys):
    p = paths.Paths(root=str(tmp_path), run="/r",
                    root_reason="/home/u/.local/share/rootless is on nfs4, a network file system; using local /x")
    paths.notice_once(p)
    assert "network file system" in capsys.readouterr().err
    paths.notice_once(p)
    assert capsys.readouterr().err == ""
    quiet = paths.Paths(root=str(tmp_path / "q"), run="/r", root_reason="default")
    paths.notice_once(quiet)
    assert capsys.readouterr().err == ""


def test_mountinfo_paths_are_unescaped():
    from rootless.paths import unescape_mountinfo
    assert unescape_mountinfo(r"/a\040b\134c\011d\012e") == "/a b\\c\td\ne"
    assert unescape_mountinfo("/plain/path") == "/plain/path"
