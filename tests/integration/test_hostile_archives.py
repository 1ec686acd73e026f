"""Hostile image archives: ``rootless load`` refuses them or neutralises them.

Every case checks four things besides the command's own answer:

(a) nothing outside the storage root changed: a sentinel tree (``outside/victim``,
    ``outside/dir``) beside the root is snapshotted (paths, types, modes, contents, link
    counts, times, xattrs) before and after, the command runs in a directory beside the root
    so relative escapes land where the snapshot sees them, and escapes deep enough to reach
    ``/`` use unique names that must not appear on the host;
(b) a refused load lists no image (``images -q`` prints nothing): all or nothing;
(c) the store's ``tmp/`` holds no work dirs: a failing command removes its own work dirs
    on the way out (``fsutil.WorkDir`` is a context manager), and the next ``load`` collects
    abandoned work and unreferenced layers/blobs (``Store.collect_garbage``);
(d) the store is not wedged: a valid archive loads afterwards into the same root.

A refusal is exit code 125 with exactly one line on stderr, ``rootless: error: ...``, naming
the problem, and nothing on stdout. Nothing here needs root; as root the tests are stricter
(mknod and writes to / would succeed if the product let them through).
"""

import gzip
import io
import json
import os
import random
import re
import secrets
import stat
import subprocess
import tarfile
import threading
import time

import pytest

from conftest import need
from imagetools import config_for, sha

ERROR_PREFIX = "rootless: error:"
MIB = 1 << 20


# -- building archives ---------------------------------------------------------------------

def tar_of(entries) -> bytes:
    """A tar from entry dicts: {"name", "type": file|dir|symlink|hardlink|chr|blk|fifo,
    "data", "target", "mode", "major", "minor"}. Names are written verbatim."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            kind = e.get("type", "file")
            info.mode = e.get("mode", 0o755 if kind == "dir" else 0o644)
            info.mtime = 1700000000
            types = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                     "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE,
                     "file": tarfile.REGTYPE}
            info.type = types[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = e["target"]
            if kind in ("chr", "blk"):
                info.devmajor, info.devminor = e.get("major", 1), e.get("minor", 3)
            if kind == "file":
                data = e.get("data", b"")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def layer(*entries) -> bytes:
    return tar_of(list(entries))


def f(name, data=b"data\n"):
    return {"name": name, "data": data}


def d(name):
    return {"name": name, "type": "dir"}


def sym(name, target):
    return {"name": name, "type": "symlink", "target": target}


def hard(name, target):
    return {"name": name, "type": "hardlink", "target": target}


def pack(members) -> bytes:
    """An outer archive from {name: bytes | entry dict}, in insertion order."""
    entries = []
    for name, value in members.items():
        if isinstance(value, dict):
            entries.append(dict(value, name=name))
        else:
            entries.append({"name": name, "data": value})
    return tar_of(entries)


def docker_parts(layers, tags=("test/hostile:1",), config=None, v25=False):
    """(members, manifest entry) of one image in a ``docker save`` archive."""
    config = config if config is not None else config_for(layers)
    if v25:
        cfg_name = "blobs/sha256/" + sha(config)[7:]
        names = ["blobs/sha256/" + sha(l)[7:] for l in layers]
    else:
        cfg_name = sha(config)[7:] + ".json"
        names = ["%s/layer.tar" % sha(l)[7:] for l in layers]
    members = {cfg_name: config}
    members.update(zip(names, layers))
    return members, {"Config": cfg_name, "RepoTags": list(tags), "Layers": names}


def docker_pack(members, manifest) -> bytes:
    members = dict(members)
    members["manifest.json"] = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    return pack(members)


def docker_archive(layers, **kw) -> bytes:
    members, entry = docker_parts(layers, **kw)
    return docker_pack(members, [entry])


def oci_parts(layers, ref="docker.io/test/oci:1", compress=True, config=None, blobs=None):
    """(members, index descriptor, manifest dict) of one image in an OCI layout."""
    blobs = blobs if blobs is not None else [gzip.compress(l, mtime=0) if compress else l for l in layers]
    config = config if config is not None else config_for(layers)
    media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": media, "digest": sha(b), "size": len(b)} for b in blobs],
    }
    mbytes = json.dumps(manifest).encode()
    members = {"blobs/sha256/" + sha(b)[7:]: b for b in [config, mbytes] + list(blobs)}
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(mbytes),
            "size": len(mbytes)}
    if ref is not None:
        desc["annotations"] = {"org.opencontainers.image.ref.name": ref}
    return members, desc, manifest


def oci_pack(members, descs, index=None) -> bytes:
    out = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    if index is None:
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": list(descs)}
    out["index.json"] = index if isinstance(index, bytes) else json.dumps(index).encode()
    out.update(members)
    return pack(out)


def oci_archive(layers, **kw) -> bytes:
    members, desc, _ = oci_parts(layers, **kw)
    return oci_pack(members, [desc])


def oci_with_manifest(manifest: dict, members: dict, ref="docker.io/test/oci:1") -> bytes:
    """An OCI archive whose (single) manifest is ``manifest``, re-serialised and re-indexed."""
    mbytes = json.dumps(manifest).encode()
    members = dict(members)
    members["blobs/sha256/" + sha(mbytes)[7:]] = mbytes
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(mbytes),
            "size": len(mbytes), "annotations": {"org.opencontainers.image.ref.name": ref}}
    return oci_pack(members, [desc])


def blob_name(data: bytes) -> str:
    return "blobs/sha256/" + sha(data)[7:]


def some_layer(tag="x") -> bytes:
    return layer(d("etc"), f("etc/hostname", ("hostile-%s\n" % tag).encode()))


def pseudo_random(n: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    return bytes(rnd.getrandbits(8) for _ in range(n))


# -- observing the host and the store ---------------------------------------------------------

def snapshot(top: str, exclude: str) -> dict:
    """path -> what a hostile write could change, for everything under ``top`` but ``exclude``."""
    state = {}

    def visit(path):
        st = os.lstat(path)
        entry = {"mode": oct(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
                 "mtime": st.st_mtime_ns, "ctime": st.st_ctime_ns}
        if stat.S_ISREG(st.st_mode):
            with open(path, "rb") as fh:
                entry["content"] = fh.read()
            entry["nlink"] = st.st_nlink
        elif stat.S_ISLNK(st.st_mode):
            entry["target"] = os.readlink(path)
        try:
            entry["xattrs"] = {k: os.getxattr(path, k, follow_symlinks=False)
                               for k in os.listxattr(path, follow_symlinks=False)}
        except OSError:
            pass
        if stat.S_ISDIR(st.st_mode):
            names = sorted(os.listdir(path))
            entry["entries"] = names
            for name in names:
                child = os.path.join(path, name)
                if child != exclude:
                    visit(child)
        state[os.path.relpath(path, top)] = entry

    visit(top)
    # top's own times change when the storage root is created beside the sentinels
    for key in ("mtime", "ctime"):
        state["."].pop(key)
    state["."]["entries"] = [n for n in state["."]["entries"] if os.path.join(top, n) != exclude]
    return state


def diff_snapshots(before: dict, after: dict) -> list:
    changes = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            changes.append("removed: %s" % path)
        elif path not in before:
            changes.append("created: %s %r" % (path, after[path]))
        elif before[path] != after[path]:
            keys = [k for k in set(before[path]) | set(after[path])
                    if before[path].get(k) != after[path].get(k)]
            changes.append("changed: %s %s" % (path, {k: (before[path].get(k), after[path].get(k))
                                                        for k in keys}))
    return changes


def tree_usage(top: str) -> "tuple[int, int]":
    """(bytes on disk, apparent bytes) of the files under ``top``; tolerant of a tree in flux."""
    disk = apparent = 0
    for dirpath, dirnames, filenames in os.walk(top):
        for n in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except OSError:
                continue
            disk += st.st_blocks * 512
            apparent += st.st_size
    return disk, apparent


def special_files(top: str) -> list:
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        for n in filenames + dirnames:
            mode = os.lstat(os.path.join(dirpath, n)).st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                found.append(os.path.relpath(os.path.join(dirpath, n), top))
    return found


class Scene:
    """A storage root with a sentinel tree beside it, and the checks every case makes."""

    def __init__(self, rl, tmp_path):
        self.rl = rl
        self.top = str(tmp_path)
        self.root = rl.root
        self.outside = os.path.join(self.top, "outside")
        self.victim = os.path.join(self.outside, "victim")
        self.outside_dir = os.path.join(self.outside, "dir")
        self.inbox = os.path.join(self.top, "in")
        self.cwd = os.path.join(self.top, "cwd", "a", "b")
        self.token = secrets.token_hex(6)
        self.canaries = []  # absolute host paths a broken unpack would create
        os.makedirs(self.outside_dir)
        os.makedirs(self.inbox)
        os.makedirs(self.cwd)
        with open(self.victim, "wb") as fh:
            fh.write(b"victim: must survive\n")
        os.chmod(self.victim, 0o640)
        with open(os.path.join(self.outside_dir, "inner"), "wb") as fh:
            fh.write(b"inner: must survive\n")

    # -- names a case may aim at -----------------------------------------------------------

    def host_canary(self, directory: str = "/") -> str:
        """A unique absolute host path in ``directory`` that must never appear."""
        path = os.path.join(directory, "rootless-hostile-%s-%d" % (self.token, len(self.canaries)))
        assert not os.path.lexists(path)
        self.canaries.append(path)
        return path

    def up_to_outside(self, depth: int) -> str:
        return "../" * depth + "outside/victim"

    # -- running -------------------------------------------------------------------------

    def write(self, data: bytes, name: str = "archive.tar") -> str:
        path = os.path.join(self.inbox, name)
        with open(path, "wb") as fh:
            fh.write(data)
        return path

    def load(self, source, *args, stdin=None, debug=False):
        extra = ["--debug"] if debug else []
        if stdin is not None:
            return self.rl(*extra, "load", *args, input=stdin, check=False, cwd=self.cwd)
        return self.rl(*extra, "load", *args, "-i", source, check=False, cwd=self.cwd)

    def refuse(self, data=None, pattern=".", *args, path=None, stdin=None):
        """Load a hostile archive; assert it is refused cleanly and changed nothing."""
        source = path if path is not None else (self.write(data) if data is not None else None)
        before = snapshot(self.top, self.root)
        proc = self.load(source, *args, stdin=stdin)
        # Every property is checked, so one report shows all that a case breaks.
        failures = []
        for check in (lambda: self.assert_untouched(before),
                      lambda: assert_one_line_error(proc, pattern),
                      lambda: self.assert_no_images("a refused load left an image listed"),
                      lambda: self.assert_no_work_dirs("after the refused load"),
                      self.assert_store_usable):
            try:
                check()
            except AssertionError as e:
                failures.append(str(e))
        assert not failures, "\n---\n".join(failures)
        return proc

    def accept(self, data, *args, debug=False):
        """Load an archive whose hostility must be neutralised; return the CompletedProcess."""
        source = self.write(data)
        before = snapshot(self.top, self.root)
        proc = self.load(source, *args, debug=debug)
        err = proc.stderr.decode(errors="replace")
        assert proc.returncode == 0, "load failed (%d): %s" % (proc.returncode, err)
        assert "Traceback" not in err, err
        self.assert_untouched(before)
        assert len(self.image_ids()) == 1
        self.assert_no_work_dirs("after the load")
        return proc

    def either(self, data, pattern):
        """Load an archive for which refusing and neutralising are both safe; check whichever
        happened and return the CompletedProcess (returncode 0 when it loaded)."""
        source = self.write(data)
        before = snapshot(self.top, self.root)
        proc = self.load(source)
        self.assert_untouched(before)
        if proc.returncode == 0:
            assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
            assert len(self.image_ids()) == 1
        else:
            assert_one_line_error(proc, pattern)
            assert self.image_ids() == []
        self.assert_no_work_dirs("after the load")
        return proc

    # -- checks --------------------------------------------------------------------------

    def assert_untouched(self, before: dict) -> None:
        changes = diff_snapshots(before, snapshot(self.top, self.root))
        assert not changes, "the load changed files outside the storage root:\n" + "\n".join(changes)
        with open(self.victim, "rb") as fh:
            assert fh.read() == b"victim: must survive\n"
        for path in self.canaries:
            assert not os.path.lexists(path), "the load created %s on the host" % path

    def image_ids(self) -> list:
        proc = self.rl("images", "-q", "--no-trunc", check=False)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        return proc.stdout.decode().split()

    def assert_no_images(self, why: str) -> None:
        assert self.image_ids() == [], why

    def work_dirs(self) -> list:
        tmp = os.path.join(self.root, "tmp")
        try:
            return sorted(os.listdir(tmp))
        except FileNotFoundError:
            return []

    def assert_no_work_dirs(self, when: str) -> None:
        left = self.work_dirs()
        assert left == [], "%s, %s/tmp holds leftovers: %s" % (when, self.root, left)

    def layer_diff(self, diff_id: str) -> str:
        return os.path.join(self.root, "layers", diff_id.split(":", 1)[1], "diff")

    def assert_store_usable(self) -> None:
        """(d) a valid archive loads into the same root; (c) the load collected garbage."""
        good = some_layer("valid-" + self.token)
        config = config_for([good])
        data = docker_archive([good], tags=("test/valid:ok",), config=config)
        path = self.write(data, "valid-%s.tar" % secrets.token_hex(4))
        proc = self.rl("load", "-i", path, check=False, cwd=self.cwd)
        assert proc.returncode == 0, "the store is wedged: %s" % proc.stderr.decode(errors="replace")
        assert b"Loaded image: test/valid:ok" in proc.stdout
        assert sha(config) in self.image_ids()
        self.assert_no_work_dirs("after a valid load")
        self.assert_only_referenced_content()
        with open(os.path.join(self.layer_diff(sha(good)), "etc", "hostname"), "rb") as fh:
            assert fh.read() == ("hostile-valid-%s\n" % self.token).encode()

    def assert_only_referenced_content(self) -> None:
        """Layers and blobs a refused load stored are collected by the next load."""
        with open(os.path.join(self.root, "images.json")) as fh:
            index = json.load(fh)
        layers, blobs = set(), set()
        for rec in index["images"].values():
            blobs.update(x.split(":", 1)[1] for x in (rec["id"], rec["manifest"]))
            for diff_id in rec["layers"]:
                layers.add(diff_id.split(":", 1)[1])
                with open(os.path.join(self.root, "layers", diff_id.split(":", 1)[1], "meta.json")) as fh:
                    kept = json.load(fh).get("blob")  # only layers tar-split cannot rebuild
                if kept:
                    blobs.add(kept.split(":", 1)[1])
        assert set(os.listdir(os.path.join(self.root, "layers"))) == layers
        assert set(os.listdir(os.path.join(self.root, "blobs", "sha256"))) == blobs


def assert_one_line_error(proc, pattern: str, code: int = 125) -> str:
    err = proc.stderr.decode(errors="replace")
    assert "Traceback" not in err, "a traceback instead of an error:\n" + err[-3000:]
    assert proc.returncode == code, "exit code %d, expected %d; stderr: %s" % (proc.returncode, code, err[-2000:])
    lines = err.splitlines()
    assert len(lines) == 1, "expected one line on stderr, got %d:\n%s" % (len(lines), err[-2000:])
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    assert re.search(pattern, lines[0], re.I), "the message does not name the problem (%s): %s" % (pattern, lines[0])
    assert proc.stdout == b"", proc.stdout[-500:]
    return lines[0]


@pytest.fixture
def scene(rl, tmp_path):
    return Scene(rl, tmp_path)


@pytest.mark.parametrize("change", ["content", "mode", "mtime", "hardlink", "new-file", "symlink",
                                    "xattr", "remove"])
def test_the_snapshot_sees_what_an_escape_would_change(rl, tmp_path, change):
    """The oracle itself: each kind of write a broken unpack could make outside the root."""
    scene = Scene(rl, tmp_path)
    os.makedirs(scene.root)
    before = snapshot(scene.top, scene.root)
    with open(os.path.join(scene.root, "ignored"), "w") as fh:
        fh.write("inside the root: not part of the snapshot")
    assert diff_snapshots(before, snapshot(scene.top, scene.root)) == []
    inner = os.path.join(scene.outside_dir, "inner")
    if change == "content":
        with open(inner, "r+b") as fh:
            fh.write(b"I")
    elif change == "mode":
        os.chmod(inner, 0o600)
    elif change == "mtime":
        os.utime(inner, ns=(0, 0))
    elif change == "hardlink":
        os.link(inner, os.path.join(scene.root, "h"))
    elif change == "new-file":
        open(os.path.join(scene.cwd, "x"), "w").close()
    elif change == "symlink":
        os.symlink("/", os.path.join(scene.outside_dir, "l"))
    elif change == "xattr":
        try:
            os.setxattr(scene.outside_dir, "user.overlay.opaque", b"y")
        except OSError as e:
            need(False, "user xattrs on the test file system (%s)" % e)
    else:
        os.unlink(inner)
    assert diff_snapshots(before, snapshot(scene.top, scene.root)) != []


# -- layer member paths ----------------------------------------------------------------------

OUTSIDE_LAYER = r"outside the layer"

# How far up a layer being unpacked (root/tmp/layer-*/layer/diff) or stored
# (root/layers/<hex>/diff) the sentinel tree lies: both depths are tried.
TRAVERSALS = {
    "up2-victim": lambda s: s.up_to_outside(2),
    "up5-victim": lambda s: s.up_to_outside(5),
    "up6-victim": lambda s: s.up_to_outside(6),
    "slash-dotdot": lambda s: "/../x",
    "a-dotdot-dotdot": lambda s: "a/../../x",
    "dot-slash-up": lambda s: "./../" + s.up_to_outside(4),
    "deep-to-host-root": lambda s: "../" * 40 + s.host_canary()[1:],
    "slash-deep-to-host-root": lambda s: "/" + "../" * 40 + s.host_canary()[1:],
    "inside-then-out": lambda s: "etc/../../" + s.up_to_outside(4),
}


@pytest.mark.parametrize("kind", ["file", "dir", "symlink", "fifo"])
@pytest.mark.parametrize("case", sorted(TRAVERSALS))
def test_layer_member_path_traversal_is_refused(scene, case, kind):
    name = TRAVERSALS[case](scene)
    member = {"file": f(name, b"pwned\n"), "dir": d(name), "symlink": sym(name, "/etc/passwd"),
              "fifo": {"name": name, "type": "fifo"}}[kind]
    bad = layer(d("etc"), f("etc/ok"), member)
    scene.refuse(docker_archive([bad]), OUTSIDE_LAYER)


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_layer_traversal_refused_in_oci_archive_too(scene, fmt):
    bad = layer(f(scene.up_to_outside(5), b"pwned\n"))
    data = docker_archive([bad]) if fmt == "docker" else oci_archive([bad])
    scene.refuse(data, OUTSIDE_LAYER)


def test_absolute_member_names_stay_inside_the_layer(scene):
    canary = scene.host_canary("/etc")
    victim_abs = scene.victim  # the sentinel's own absolute path, as a member name
    good = layer(f("/etc/x", b"inside\n"), f(canary, b"canary\n"), f(victim_abs, b"pwned\n"),
                 f("//double/slash", b"ds\n"), f("a/../b", b"b\n"))
    scene.accept(docker_archive([good]))
    diff = scene.layer_diff(sha(good))
    with open(os.path.join(diff, "etc", "x"), "rb") as fh:
        assert fh.read() == b"inside\n"
    assert os.path.isfile(diff + canary)
    with open(diff + victim_abs, "rb") as fh:
        assert fh.read() == b"pwned\n"
    assert os.path.isfile(os.path.join(diff, "double", "slash"))
    assert os.path.isfile(os.path.join(diff, "b"))
    scene.assert_store_usable()


# -- symlinks ----------------------------------------------------------------------------------

SYMLINK_ESCAPES = {
    "abs-dir-then-file": lambda s: [sym("esc", s.outside), f("esc/pwned", b"pwned\n")],
    "abs-dir-then-victim": lambda s: [sym("esc", s.outside), f("esc/victim", b"pwned\n")],
    "abs-dir-then-subdir": lambda s: [sym("esc", s.outside), d("esc/dir/sub")],
    "abs-dir-then-symlink": lambda s: [sym("esc", s.outside_dir), sym("esc/link", "/etc/passwd")],
    "abs-dir-then-fifo": lambda s: [sym("esc", s.outside_dir), {"name": "esc/fifo", "type": "fifo"}],
    "host-root-then-canary": lambda s: [sym("esc", "/"), f("esc" + s.host_canary(), b"pwned\n")],
    "relative-up-then-file": lambda s: [sym("esc", "../" * 5 + "outside"), f("esc/pwned")],
    "chain-then-file": lambda s: [sym("a", "b"), sym("b", s.outside), f("a/pwned")],
    "nested-dir-link": lambda s: [d("usr"), sym("usr/lib", s.outside), f("usr/lib/pwned")],
    "victim-file-link-then-overwrite": lambda s: [sym("v", s.victim), f("v/x")],
    "dotdot-out-through-link": lambda s: [sym("esc", s.outside_dir), f("esc/../../victim")],
}


@pytest.mark.parametrize("case", sorted(SYMLINK_ESCAPES))
def test_symlink_escape_in_one_layer_is_refused(scene, case):
    bad = layer(*SYMLINK_ESCAPES[case](scene))
    scene.refuse(docker_archive([bad]), r"not a directory|outside the layer")
    assert not os.path.exists(os.path.join(scene.outside, "pwned"))


def test_dotdot_is_lexical_and_never_resolved_through_symlinks(scene):
    """``esc/../victim`` is ``victim`` of the layer (names are cleaned lexically, as Docker
    does), even when ``esc`` is a symlink to the sentinel dir; ``.wh.../../outside/victim``
    is the regular file ``outside/victim`` of the layer, not a whiteout."""
    good = layer(sym("esc", scene.outside_dir), f("esc/../victim", b"pwned\n"),
                 f(".wh." + scene.up_to_outside(2), b"not a whiteout\n"))
    scene.accept(docker_archive([good]))
    diff = scene.layer_diff(sha(good))
    with open(os.path.join(diff, "victim"), "rb") as fh:
        assert fh.read() == b"pwned\n"
    with open(os.path.join(diff, "outside", "victim"), "rb") as fh:
        assert fh.read() == b"not a whiteout\n"
    assert os.listdir(scene.outside_dir) == ["inner"]
    scene.assert_store_usable()


def test_symlink_replaced_by_a_directory_is_neutralised(scene):
    """A directory member at a symlink's path replaces the symlink inside the layer (as
    tar does), or the layer is refused; it never creates the directory through the link."""
    good = layer(sym("esc", scene.outside), d("esc"), f("esc/pwned", b"pwned\n"))
    if scene.either(docker_archive([good]), r"not a directory|symlink").returncode == 0:
        diff = scene.layer_diff(sha(good))
        assert os.path.isdir(os.path.join(diff, "esc")) and not os.path.islink(os.path.join(diff, "esc"))
        assert os.path.isfile(os.path.join(diff, "esc", "pwned"))
    assert sorted(os.listdir(scene.outside)) == ["dir", "victim"]
    scene.assert_store_usable()


def test_symlink_to_victim_replaced_by_a_file_is_neutralised(scene):
    """A file member at a symlink's path replaces the link; it never writes through it."""
    good = layer(sym("v", scene.victim), f("v", b"pwned\n"))
    if scene.either(docker_archive([good]), r"symlink|link").returncode == 0:
        path = os.path.join(scene.layer_diff(sha(good)), "v")
        assert not os.path.islink(path)
        with open(path, "rb") as fh:
            assert fh.read() == b"pwned\n"
    scene.assert_store_usable()


SECOND_LAYER = {
    # second layer's members -> None (safe either way: loads with the path made in the
    # second layer's own directory, or refused) or an error pattern (must be refused)
    "file": (lambda s: [f("esc/pwned", b"pwned\n")], None),
    "victim-name": (lambda s: [f("esc/victim", b"pwned\n")], None),
    "dir-and-file": (lambda s: [d("esc"), d("esc/dir"), f("esc/dir/pwned")], None),
    "whiteout": (lambda s: [f("esc/.wh.victim", b"")], None),
    "opaque": (lambda s: [f("esc/dir/.wh..wh..opq", b"")], None),
    "symlink": (lambda s: [sym("esc/link", "/etc/passwd")], None),
    "hardlink": (lambda s: [hard("h", "esc/victim")], r"hardlink.*not a file of this layer"),
}


@pytest.mark.parametrize("case", sorted(SECOND_LAYER))
@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_symlink_from_a_first_layer_does_not_reach_out_from_the_second(scene, case, fmt):
    """Each layer is unpacked into its own empty directory, so a path through a symlink of
    an earlier layer is an ordinary path of the later one: it is created there."""
    members, expected = SECOND_LAYER[case]
    first = layer(sym("esc", scene.outside))
    second = layer(*members(scene))
    data = docker_archive([first, second]) if fmt == "docker" else oci_archive([first, second])
    if expected:
        scene.refuse(data, expected)
        return
    if scene.either(data, r"symlink|not a directory|lower layer").returncode == 0:
        assert os.readlink(os.path.join(scene.layer_diff(sha(first)), "esc")) == scene.outside
        esc2 = os.path.join(scene.layer_diff(sha(second)), "esc")
        assert os.path.isdir(esc2) and not os.path.islink(esc2)
    assert sorted(os.listdir(scene.outside)) == ["dir", "victim"]
    assert os.listdir(scene.outside_dir) == ["inner"]
    scene.assert_store_usable()


# -- hardlinks --------------------------------------------------------------------------------

HARDLINKS = {
    "up2-victim": (lambda s: [hard("h", s.up_to_outside(2))], OUTSIDE_LAYER),
    "up5-victim": (lambda s: [hard("h", s.up_to_outside(5))], OUTSIDE_LAYER),
    "up6-victim": (lambda s: [hard("h", s.up_to_outside(6))], OUTSIDE_LAYER),
    "abs-victim": (lambda s: [hard("h", s.victim)], r"not a file of this layer"),
    "abs-etc-passwd": (lambda s: [hard("h", "/etc/passwd")], r"not a file of this layer"),
    "through-dir-symlink": (lambda s: [sym("l", s.outside), hard("h", "l/victim")],
                            r"not a file of this layer"),
    "through-relative-symlink": (lambda s: [sym("l", "../" * 5 + "outside"), hard("h", "l/victim")],
                                 r"not a file of this layer"),
    "to-a-directory": (lambda s: [d("dir"), hard("h", "dir")], r"not a file of this layer"),
    "before-its-target": (lambda s: [hard("h", "later"), f("later")], r"not a file of this layer"),
    "name-outside": (lambda s: [f("ok"), hard(s.up_to_outside(5), "ok")], OUTSIDE_LAYER),
    "name-through-symlink": (lambda s: [f("ok"), sym("l", s.outside_dir), hard("l/h", "ok")],
                             r"not a directory"),
}


@pytest.mark.parametrize("case", sorted(HARDLINKS))
def test_hardlink_escape_is_refused(scene, case):
    members, pattern = HARDLINKS[case]
    nlink = os.lstat(scene.victim).st_nlink
    scene.refuse(docker_archive([layer(*members(scene))]), pattern)
    assert os.lstat(scene.victim).st_nlink == nlink


def test_hardlink_to_a_symlink_of_the_layer_links_the_symlink_itself(scene):
    """``h`` -> ``lv`` where ``lv`` is a symlink to the victim: the hardlink is to the
    symlink (linkat without AT_SYMLINK_FOLLOW), never to the host file it names."""
    nlink = os.lstat(scene.victim).st_nlink
    good = layer(sym("lv", scene.victim), hard("h", "lv"))
    scene.accept(docker_archive([good]))
    diff = scene.layer_diff(sha(good))
    assert os.path.islink(os.path.join(diff, "h"))
    assert os.lstat(os.path.join(diff, "h")).st_ino == os.lstat(os.path.join(diff, "lv")).st_ino
    assert os.lstat(scene.victim).st_nlink == nlink
    scene.assert_store_usable()


# -- whiteouts --------------------------------------------------------------------------------

WHITEOUTS = {
    "parent-whiteout": (lambda s: "../.wh.victim", OUTSIDE_LAYER),
    "parent-opaque": (lambda s: "../.wh..wh..opq", OUTSIDE_LAYER),
    "dir-whiteout-dotdot": (lambda s: "dir/.wh..", r"whiteout"),
    "whiteout-dotdotdot": (lambda s: ".wh...", r"whiteout"),
    "whiteout-empty": (lambda s: "dir/.wh.", r"whiteout"),
    "whiteout-of-up3-victim": (lambda s: ".wh." + s.up_to_outside(3), OUTSIDE_LAYER),
    "whiteout-of-up5-victim": (lambda s: ".wh." + s.up_to_outside(5), OUTSIDE_LAYER),
    "whiteout-of-up6-victim": (lambda s: ".wh." + s.up_to_outside(6), OUTSIDE_LAYER),
    "dotdot-then-whiteout": (lambda s: "dir/../../" + "../" * 4 + "outside/.wh.victim", OUTSIDE_LAYER),
    "whiteout-of-host-root": (lambda s: "../" * 40 + ".wh." + s.host_canary()[1:], OUTSIDE_LAYER),
}


@pytest.mark.parametrize("case", sorted(WHITEOUTS))
def test_whiteout_reaching_out_is_refused(scene, case):
    name, pattern = WHITEOUTS[case]
    bad = layer(d("dir"), f("dir/file"), f(name(scene), b""))
    scene.refuse(docker_archive([bad]), pattern)


def test_whiteout_through_a_symlink_of_the_layer_is_refused(scene):
    bad = layer(sym("esc", scene.outside), f("esc/.wh.victim", b""))
    scene.refuse(docker_archive([bad]), r"not a directory")


@pytest.mark.parametrize("marker", [".wh.victim", ".wh..wh..opq", ".wh.dir"])
def test_absolute_whiteout_stays_inside_the_layer(scene, marker):
    """A whiteout named by the sentinel's absolute path marks a path of the layer only."""
    good = layer(f(scene.outside + "/" + marker, b""))
    scene.accept(docker_archive([good]))
    diff = scene.layer_diff(sha(good))
    assert os.path.isdir(diff + scene.outside)
    assert sorted(os.listdir(scene.outside)) == ["dir", "victim"]
    assert os.listdir(scene.outside_dir) == ["inner"]
    scene.assert_store_usable()


def test_opaque_marker_below_a_symlink_of_the_layer(scene):
    """Refused, or the symlink is replaced by a directory of the layer; the sentinel dir
    never gets an opaque mark (the snapshot compares xattrs too)."""
    good = layer(sym("esc", scene.outside_dir), f("esc/.wh..wh..opq", b""))
    if scene.either(docker_archive([good]), r"not a directory").returncode == 0:
        esc = os.path.join(scene.layer_diff(sha(good)), "esc")
        assert os.path.isdir(esc) and not os.path.islink(esc)
    assert os.listdir(scene.outside_dir) == ["inner"]
    scene.assert_store_usable()


# -- names in manifest.json / index.json --------------------------------------------------------

ARCHIVE_NAMES = r"outside the archive|links outside the archive|no member|not a file|not a sha256 digest"


def _manifest_paths_case(scene, case):
    good = some_layer()
    members, entry = docker_parts([good])
    lay = entry["Layers"][0]
    if case == "config-up-victim":
        entry["Config"] = "../../outside/victim"
    elif case == "config-deep-victim":
        entry["Config"] = "../" * 10 + scene.victim.lstrip("/")
    elif case == "config-abs-victim":
        entry["Config"] = scene.victim
    elif case == "config-etc-passwd":
        entry["Config"] = "/etc/passwd"
    elif case == "config-dot":
        entry["Config"] = "."
    elif case == "config-directory":
        members["cfgdir"] = {"type": "dir"}
        entry["Config"] = "cfgdir"
    elif case == "config-symlink-to-etc-passwd":
        members["cfg.json"] = {"type": "symlink", "target": "/etc/passwd"}
        entry["Config"] = "cfg.json"
    elif case == "config-symlink-up":
        members["cfg.json"] = {"type": "symlink", "target": "../../outside/victim"}
        entry["Config"] = "cfg.json"
    elif case == "config-hardlink-up":
        members["cfg.json"] = {"type": "hardlink", "target": "../outside/victim"}
        entry["Config"] = "cfg.json"
    elif case == "config-symlink-loop":
        members["a.json"] = {"type": "symlink", "target": "b.json"}
        members["b.json"] = {"type": "symlink", "target": "a.json"}
        entry["Config"] = "a.json"
    elif case == "layer-up-victim":
        entry["Layers"] = ["../../outside/victim"]
    elif case == "layer-abs-victim":
        entry["Layers"] = [scene.victim]
    elif case == "layer-etc-passwd":
        entry["Layers"] = ["/etc/passwd"]
    elif case == "layer-symlink-to-etc-passwd":
        members["l.tar"] = {"type": "symlink", "target": "/etc/passwd"}
        entry["Layers"] = ["l.tar"]
    elif case == "layer-symlink-up":
        members["x/l.tar"] = {"type": "symlink", "target": "../../../outside/victim"}
        entry["Layers"] = ["x/l.tar"]
    elif case == "layer-member-named-up":
        # the archive itself carries a member whose name climbs out
        members["../../outside/victim"] = members.pop(lay)
        entry["Layers"] = ["../../outside/victim"]
    elif case == "layer-non-string":
        entry["Layers"] = [{"path": lay}]
        return members, entry, r"non-string layer"
    else:
        raise AssertionError(case)
    return members, entry, ARCHIVE_NAMES


MANIFEST_PATH_CASES = [
    "config-up-victim", "config-deep-victim", "config-abs-victim", "config-etc-passwd", "config-dot",
    "config-directory", "config-symlink-to-etc-passwd", "config-symlink-up", "config-hardlink-up",
    "config-symlink-loop", "layer-up-victim", "layer-abs-victim", "layer-etc-passwd",
    "layer-symlink-to-etc-passwd", "layer-symlink-up", "layer-member-named-up", "layer-non-string",
]


@pytest.mark.parametrize("case", MANIFEST_PATH_CASES)
def test_manifest_json_names_outside_the_archive_are_refused(scene, case):
    members, entry, pattern = _manifest_paths_case(scene, case)
    if case == "config-symlink-loop":
        pattern = r"too many links|no member"
    scene.refuse(docker_pack(members, [entry]), pattern)


@pytest.mark.parametrize("which", ["index-entry", "config", "layer"])
def test_oci_digests_that_are_paths_are_refused(scene, which):
    good = some_layer()
    members, desc, manifest = oci_parts([good])
    evil = "sha256:../../../outside/victim"
    if which == "index-entry":
        desc["digest"] = evil
        data = oci_pack(members, [desc])
    else:
        target = manifest["config"] if which == "config" else manifest["layers"][0]
        target["digest"] = evil
        data = oci_with_manifest(manifest, members)
    scene.refuse(data, r"not a sha256 digest")


def test_config_diff_id_that_is_a_path_is_refused(scene):
    good = some_layer()
    config = json.loads(config_for([good]))
    config["rootfs"]["diff_ids"] = ["sha256:../../../../outside/victim"]
    scene.refuse(docker_archive([good], config=json.dumps(config).encode()), r"not a sha256 digest")


def _oci_dir(scene, name="layout"):
    good = some_layer("dir")
    members, desc, manifest = oci_parts([good])
    top = os.path.join(scene.inbox, name)
    os.makedirs(os.path.join(top, "blobs", "sha256"))
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
             "index.json": json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode()}
    files.update(members)
    for rel, data in files.items():
        with open(os.path.join(top, rel), "wb") as fh:
            fh.write(data)
    return top, manifest


@pytest.mark.parametrize("how", ["config-blob-symlink", "blobs-dir-symlink", "index-symlink"])
def test_oci_layout_directory_read_only_below_itself(scene, how):
    """A blob symlinked to a host file with the right content is still refused."""
    top, manifest = _oci_dir(scene)
    cfg = os.path.join(top, "blobs", "sha256", manifest["config"]["digest"][7:])
    if how == "config-blob-symlink":
        planted = os.path.join(scene.outside, "planted-config")
        os.rename(cfg, planted)
        os.symlink(planted, cfg)
    elif how == "blobs-dir-symlink":
        planted = os.path.join(scene.outside, "planted-blobs")
        os.rename(os.path.join(top, "blobs", "sha256"), planted)
        os.symlink(planted, os.path.join(top, "blobs", "sha256"))
    else:
        planted = os.path.join(scene.outside, "planted-index")
        os.rename(os.path.join(top, "index.json"), planted)
        os.symlink(planted, os.path.join(top, "index.json"))
    scene.refuse(None, r"OCI layout .* has no regular file|neither manifest.json", path=top)


def test_oci_layout_directory_loads_when_sound(scene):
    """The control for the case above: the same directory without symlinks loads."""
    top, manifest = _oci_dir(scene)
    before = snapshot(scene.top, scene.root)
    proc = scene.load(top)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    scene.assert_untouched(before)
    assert scene.image_ids() == [manifest["config"]["digest"]]


# -- digests ----------------------------------------------------------------------------------

MISMATCH = r"digest|hashes to|config says|manifest says|descriptor says|refusing"


def test_docker_layer_content_not_matching_diff_id(scene):
    claimed, actual = some_layer("claimed"), some_layer("actual")
    members, entry = docker_parts([claimed])
    members[entry["Layers"][0]] = actual
    scene.refuse(docker_pack(members, [entry]), r"config says")


def test_docker_v25_blob_name_lies_about_the_layer(scene):
    """blobs/sha256/<hex> names a digest the content does not have (diff_id matches)."""
    good = some_layer()
    members, entry = docker_parts([good], v25=True)
    liar = "blobs/sha256/" + "0" * 64
    members[liar] = members.pop(entry["Layers"][0])
    entry["Layers"] = [liar]
    scene.refuse(docker_pack(members, [entry]), r"manifest says|digest")


def test_docker_v25_config_name_not_matching_content(scene):
    good = some_layer()
    members, entry = docker_parts([good], v25=True)
    liar = "blobs/sha256/" + "1" * 64
    members[liar] = members.pop(entry["Config"])
    entry["Config"] = liar
    scene.refuse(docker_pack(members, [entry]), r"hashes to")


def test_classic_config_file_name_does_not_decide_the_image_id(scene):
    """Classic archives name configs <hex>.json; the ID is the content's digest regardless."""
    good = some_layer()
    members, entry = docker_parts([good])
    config = members.pop(entry["Config"])
    entry["Config"] = "2" * 64 + ".json"
    members[entry["Config"]] = config
    scene.accept(docker_pack(members, [entry]))
    assert scene.image_ids() == [sha(config)]
    scene.assert_store_usable()


@pytest.mark.parametrize("what", ["layer", "config", "manifest"])
def test_oci_blob_content_not_matching_its_digest(scene, what):
    good = some_layer()
    members, desc, manifest = oci_parts([good])
    if what == "layer":
        name = "blobs/sha256/" + manifest["layers"][0]["digest"][7:]
        members[name] = gzip.compress(some_layer("tampered"), mtime=0)
    elif what == "config":
        name = "blobs/sha256/" + manifest["config"]["digest"][7:]
        members[name] = members[name].replace(b'"amd64"', b'"arm64"')
    else:
        name = "blobs/sha256/" + desc["digest"][7:]
        members[name] = members[name].replace(b'"schemaVersion": 2', b'"schemaVersion":  2')
    scene.refuse(oci_pack(members, [desc]), MISMATCH)


def test_oci_layer_matching_its_blob_digest_but_not_the_diff_id(scene):
    good, other = some_layer("good"), some_layer("other")
    config = config_for([good])
    members, desc, manifest = oci_parts([other], config=config)
    scene.refuse(oci_pack(members, [desc]), r"config says")


def test_oci_descriptor_size_lies(scene):
    good = some_layer()
    members, desc, manifest = oci_parts([good])
    manifest["config"]["size"] += 1
    scene.refuse(oci_with_manifest(manifest, members), r"descriptor says|size")


# -- truncation and corruption --------------------------------------------------------------

def _big_layer() -> bytes:
    return layer(d("data"), f("data/blob", pseudo_random(256 * 1024, 7)), f("data/after", b"after\n"))


TRUNCATED = r"truncat|end-of-stream|ended|not a valid tar|unexpected end|damaged|corrupt"


def test_docker_layer_cut_in_half(scene):
    full = _big_layer()
    members, entry = docker_parts([full])
    members[entry["Layers"][0]] = full[: len(full) // 2]
    scene.refuse(docker_pack(members, [entry]), TRUNCATED)


@pytest.mark.parametrize("cut", ["half", "trailer", "last-byte", "header-only"])
def test_oci_gzip_layer_truncated(scene, cut):
    """The descriptor's digest matches the truncated blob: the truncation itself is caught."""
    full = _big_layer()
    gz = gzip.compress(full, mtime=0)
    short = {"half": gz[: len(gz) // 2], "trailer": gz[:-8], "last-byte": gz[:-1],
             "header-only": gz[:10]}[cut]
    members, desc, manifest = oci_parts([full], blobs=[short])
    scene.refuse(oci_pack(members, [desc]), TRUNCATED)


@pytest.mark.parametrize("damage", ["crc", "length", "deflate-data"])
def test_oci_gzip_layer_corrupt(scene, damage):
    """Corrupt gzip whose blob digest matches the descriptor (a tool wrote it broken)."""
    full = _big_layer()
    gz = bytearray(gzip.compress(full, mtime=0))
    if damage == "crc":
        gz[-8] ^= 0xFF
    elif damage == "length":
        gz[-1] ^= 0xFF
    else:
        for i in range(40, 60):
            gz[i] ^= 0x5A
    members, desc, manifest = oci_parts([full], blobs=[bytes(gz)])
    scene.refuse(oci_pack(members, [desc]), r"crc|length|corrupt|invalid|compress|gzip|truncat|damaged|tar")


@pytest.mark.parametrize("damage", ["truncated-half", "truncated-end", "corrupt"])
@pytest.mark.parametrize("codec", ["bzip2", "xz"])
def test_oci_other_compressed_layer_damaged(scene, codec, damage):
    """Layers may be bzip2 or xz (sniffed by magic); their decoders fail with their own
    exception types, which must become the same one-line refusal."""
    import bz2
    import lzma
    full = _big_layer()
    packed = bytearray({"bzip2": bz2.compress, "xz": lzma.compress}[codec](full))
    if damage == "truncated-half":
        packed = packed[: len(packed) // 2]
    elif damage == "truncated-end":
        packed = packed[:-4]
    else:
        for i in range(len(packed) // 2, len(packed) // 2 + 32):
            packed[i] ^= 0x5A
    members, desc, manifest = oci_parts([full], blobs=[bytes(packed)])
    scene.refuse(oci_pack(members, [desc]), r"crc|corrupt|invalid|compress|truncat|damaged|tar|end|data")


@pytest.mark.parametrize("fmt", ["docker", "oci"])
@pytest.mark.parametrize("cut", ["half", "quarter", "1-byte", "600-bytes"])
def test_whole_archive_truncated(scene, fmt, cut):
    full = _big_layer()
    data = docker_archive([full]) if fmt == "docker" else oci_archive([full], compress=False)
    size = {"half": len(data) // 2, "quarter": len(data) // 4, "1-byte": 1, "600-bytes": 600}[cut]
    scene.refuse(data[:size], TRUNCATED + r"|not an image archive|no member|neither")


@pytest.mark.parametrize("codec", ["gzip", "bzip2", "xz"])
def test_compressed_archive_truncated(scene, codec):
    import bz2
    import lzma
    data = docker_archive([_big_layer()])
    packed = {"gzip": lambda b: gzip.compress(b, mtime=0), "bzip2": bz2.compress, "xz": lzma.compress}[codec](data)
    scene.refuse(packed[: len(packed) // 2], TRUNCATED + r"|compressed|not an image archive")


@pytest.mark.parametrize("codec", ["gzip", "bzip2", "xz", "zstd"])
def test_compressed_archive_garbage(scene, codec):
    magic = {"gzip": b"\x1f\x8b\x08\x00", "bzip2": b"BZh9", "xz": b"\xfd7zXZ\x00", "zstd": b"\x28\xb5\x2f\xfd"}[codec]
    scene.refuse(magic + pseudo_random(4096, 3), r"gzip|bzip|xz|lzma|zstd|compress|invalid|not an image archive|format")


# -- decompression bombs ------------------------------------------------------------------------

def _bomb(fill: bytes) -> bytes:
    big = layer(d("bomb"), f("bomb/zeros", fill * (64 * MIB // len(fill))))
    return oci_archive([big])


@pytest.mark.parametrize("how,fill", [("flag", b"\0"), ("env", b"\0"), ("flag", b"A"), ("env", b"A")],
                         ids=["flag-zeros", "env-zeros", "flag-letters", "env-letters"])
def test_decompression_bomb_is_refused_by_the_size_guard(scene, monkeypatch, how, fill):
    path = scene.write(_bomb(fill))
    assert os.path.getsize(path) < 2 * MIB
    args = ["load", "-i", path]
    if how == "flag":
        args[1:1] = ["--max-layer-size", "8m"]
    else:
        monkeypatch.setenv("ROOTLESS_MAX_LAYER_SIZE", "8m")
    before = snapshot(scene.top, scene.root)
    peak_disk = peak_apparent = 0
    out_path, err_path = os.path.join(scene.top, "bomb.out"), os.path.join(scene.top, "bomb.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = scene.rl.popen(*args, stdout=out, stderr=err, cwd=scene.cwd)
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if os.path.isdir(scene.root):
                disk, apparent = tree_usage(scene.root)
                peak_disk, peak_apparent = max(peak_disk, disk), max(peak_apparent, apparent)
            time.sleep(0.002)
        proc.wait(timeout=60)
    with open(out_path, "rb") as out, open(err_path, "rb") as err:
        done = subprocess.CompletedProcess(args, proc.returncode, out.read(), err.read())
    os.unlink(out_path)
    os.unlink(err_path)
    assert_one_line_error(done, r"decompression bomb|max-layer-size|ROOTLESS_MAX_LAYER_SIZE")
    assert peak_disk < 20 * MIB, "the root grew to %d bytes on disk" % peak_disk
    assert peak_apparent < 20 * MIB, "the root grew to %d bytes (apparent)" % peak_apparent
    assert max(tree_usage(scene.root)) < 20 * MIB
    scene.assert_untouched(before)
    assert scene.image_ids() == []
    scene.assert_no_work_dirs("after the refused load")
    scene.assert_store_usable()


def test_compressed_archive_bomb_is_bounded_too(scene):
    """A gzip-compressed docker archive is decompressed to a spool file before it is read.
    Its 64 MiB layer is over ``--max-layer-size 8m``, so the load is refused; the refusal
    must come before 64 MiB lands in the store's tmp/ (the guard exists to bound the disk a
    hostile download can fill)."""
    big = layer(d("bomb"), f("bomb/zeros", bytes(64 * MIB)))
    path = scene.write(gzip.compress(docker_archive([big]), mtime=0, compresslevel=9))
    assert os.path.getsize(path) < 2 * MIB
    before = snapshot(scene.top, scene.root)
    proc = scene.rl.popen("load", "--max-layer-size", "8m", "-i", path, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=scene.cwd)
    peak = [0]

    def watch():
        while proc.poll() is None:
            if os.path.isdir(scene.root):
                peak[0] = max(peak[0], max(tree_usage(scene.root)))
            time.sleep(0.002)
    watcher = threading.Thread(target=watch)
    watcher.start()
    out, err = proc.communicate(timeout=300)
    watcher.join()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert_one_line_error(done, r"decompression bomb|max-layer-size|larger than")
    scene.assert_untouched(before)
    assert scene.image_ids() == []
    scene.assert_no_work_dirs("after the refused load")
    assert peak[0] < 20 * MIB, "the store grew to %d bytes while refusing the archive" % peak[0]
    scene.assert_store_usable()


# -- malformed JSON ----------------------------------------------------------------------------

def _docker_json_case(case):
    good = some_layer()
    members, entry = docker_parts([good])
    manifest = [entry]
    cfg_name = entry["Config"]
    config = json.loads(members[cfg_name])
    if case == "manifest-not-json":
        manifest = b"this is { not json"
    elif case == "manifest-invalid-utf8":
        manifest = b'[{"Config": "\xff\xfe"}]'
    elif case == "manifest-dict":
        manifest = entry
    elif case == "manifest-empty-list":
        manifest = []
    elif case == "manifest-null":
        manifest = b"null"
    elif case == "manifest-list-of-numbers":
        manifest = [1, 2]
    elif case == "manifest-config-not-string":
        entry["Config"] = 5
    elif case == "manifest-layers-not-list":
        entry["Layers"] = entry["Layers"][0]
    elif case == "manifest-deeply-nested":
        manifest = b"[" * 200000 + b"]" * 200000
    elif case == "manifest-huge":
        manifest = b"[" + b" " * (17 * MIB) + b"]"
    elif case == "config-not-json":
        members[cfg_name] = b"\x00\x01 not json"
    elif case == "config-list":
        members[cfg_name] = b"[1, 2, 3]"
    elif case == "config-missing-rootfs":
        del config["rootfs"]
    elif case == "config-rootfs-wrong-type":
        config["rootfs"]["type"] = "tarballs"
    elif case == "config-diff-ids-not-list":
        config["rootfs"]["diff_ids"] = config["rootfs"]["diff_ids"][0]
    elif case == "config-diff-ids-too-many":
        config["rootfs"]["diff_ids"].append(sha(b"another"))
    elif case == "config-diff-ids-too-few":
        config["rootfs"]["diff_ids"] = []
    elif case == "config-config-not-object":
        config["config"] = "sh -c pwned"
    elif case == "config-history-not-list":
        config["history"] = "nope"
    elif case == "config-architecture-not-string":
        config["architecture"] = ["amd64"]
    elif case == "config-deeply-nested":
        members[cfg_name] = b'{"a":' * 100000 + b"1" + b"}" * 100000
    else:
        raise AssertionError(case)
    if case.startswith("config-") and cfg_name in members and isinstance(config, dict) \
            and case not in ("config-not-json", "config-list", "config-deeply-nested"):
        members[cfg_name] = json.dumps(config).encode()
    return docker_pack(members, manifest)


DOCKER_JSON = {
    "manifest-not-json": r"manifest.json is not valid JSON",
    "manifest-invalid-utf8": r"manifest.json is not valid JSON",
    "manifest-dict": r"not a non-empty list",
    "manifest-empty-list": r"not a non-empty list",
    "manifest-null": r"not a non-empty list",
    "manifest-list-of-numbers": r"lacks Config or Layers",
    "manifest-config-not-string": r"lacks Config or Layers",
    "manifest-layers-not-list": r"lacks Config or Layers",
    "manifest-deeply-nested": r"manifest.json .*(JSON|nest|deep)",
    "manifest-huge": r"larger than",
    "config-not-json": r"not valid JSON",
    "config-list": r"not a JSON object",
    "config-missing-rootfs": r"rootfs",
    "config-rootfs-wrong-type": r"rootfs",
    "config-diff-ids-not-list": r"rootfs",
    "config-diff-ids-too-many": r"diff_ids",
    "config-diff-ids-too-few": r"diff_ids",
    "config-config-not-object": r"config is not an object",
    "config-history-not-list": r"history",
    "config-architecture-not-string": r"architecture",
    "config-deeply-nested": r"config .*(JSON|nest|deep)",
}


@pytest.mark.parametrize("case", sorted(DOCKER_JSON))
def test_malformed_docker_json_is_refused(scene, case):
    scene.refuse(_docker_json_case(case), DOCKER_JSON[case])


def _oci_json_case(case):
    good = some_layer()
    members, desc, manifest = oci_parts([good])
    if case == "index-garbage":
        return oci_pack(members, [desc], index=b"\x89PNG garbage {")
    if case == "index-list":
        return oci_pack(members, [desc], index=b"[]")
    if case == "index-no-manifests":
        return oci_pack(members, [desc], index={"schemaVersion": 2, "manifests": []})
    if case == "index-manifests-string":
        return oci_pack(members, [desc], index={"schemaVersion": 2, "manifests": "abc"})
    if case == "index-schema-1":
        return oci_pack(members, [desc], index={"schemaVersion": 1, "manifests": [desc]})
    if case == "index-entry-no-size":
        del desc["size"]
        return oci_pack(members, [desc])
    if case == "manifest-schema-1":
        manifest = {"schemaVersion": 1, "name": "test/oci", "tag": "1", "fsLayers": [], "history": []}
    elif case == "manifest-unknown-media-type":
        manifest["mediaType"] = "application/x-evil"
    elif case == "manifest-layers-not-list":
        manifest["layers"] = manifest["layers"][0]
    elif case == "manifest-no-config":
        del manifest["config"]
    elif case == "manifest-not-json":
        members = dict(members)
        bad = b"{{{ not json"
        members[blob_name(bad)] = bad
        desc = dict(desc, digest=sha(bad), size=len(bad))
        return oci_pack(members, [desc])
    elif case == "config-missing-rootfs":
        cfg = json.loads(members[blob_name_of(manifest["config"])])
        del cfg["rootfs"]
        data = json.dumps(cfg).encode()
        members[blob_name(data)] = data
        manifest["config"] = dict(manifest["config"], digest=sha(data), size=len(data))
    elif case == "diff-ids-count":
        cfg = json.loads(members[blob_name_of(manifest["config"])])
        cfg["rootfs"]["diff_ids"].append(sha(b"more"))
        data = json.dumps(cfg).encode()
        members[blob_name(data)] = data
        manifest["config"] = dict(manifest["config"], digest=sha(data), size=len(data))
    elif case == "nested-index":
        inner = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [dict(desc, platform={"os": "linux", "architecture": _arch()})]}
        ib = json.dumps(inner).encode()
        outer = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": inner["mediaType"], "digest": sha(ib), "size": len(ib),
                                "platform": {"os": "linux", "architecture": _arch()}}]}
        ob = json.dumps(outer).encode()
        members[blob_name(ib)] = ib
        members[blob_name(ob)] = ob
        return oci_pack(members, [{"mediaType": outer["mediaType"], "digest": sha(ob), "size": len(ob)}])
    else:
        raise AssertionError(case)
    return oci_with_manifest(manifest, members)


def blob_name_of(descriptor: dict) -> str:
    return "blobs/sha256/" + descriptor["digest"][7:]


def _arch() -> str:
    import platform
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


OCI_JSON = {
    "index-garbage": r"index.json is not valid JSON",
    "index-list": r"index.json is not a JSON object",
    "index-no-manifests": r"lists no images",
    "index-manifests-string": r"descriptor|manifests",
    "index-schema-1": r"schema",
    "index-entry-no-size": r"size",
    "manifest-schema-1": r"schema 1",
    "manifest-unknown-media-type": r"mediaType",
    "manifest-layers-not-list": r"layers",
    "manifest-no-config": r"config",
    "manifest-not-json": r"not valid JSON",
    "config-missing-rootfs": r"rootfs",
    "diff-ids-count": r"diff_ids",
    "nested-index": r"nested",
}


@pytest.mark.parametrize("case", sorted(OCI_JSON))
def test_malformed_oci_json_is_refused(scene, case):
    scene.refuse(_oci_json_case(case), OCI_JSON[case])


# -- tags ----------------------------------------------------------------------------------------

HOSTILE_TAGS = {
    "dotdot-path": "../../evil",
    "dotdot-path-with-tag": "../../evil:1",
    "absolute-path": "/etc/passwd:1",
    "uppercase": "UPPER:case",
    "space": "a b",
    "300-chars": "a" * 300,
    "300-char-tag": "a:" + "t" * 300,
    "newline": "ok:1\nrootless: error: injected",
    "carriage-return": "ok:1\r",
    "nul": "ok:1\0",
    "empty": "",
    "digest": "test/img@sha256:" + "a" * 64,
    "bad-tag-chars": "test/img:-lead",
    "colon-only": ":",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TAGS))
def test_hostile_repo_tag_is_refused(scene, case):
    data = docker_archive([some_layer()], tags=("test/fine:1", HOSTILE_TAGS[case]))
    scene.refuse(data, r"tag|reference")


@pytest.mark.parametrize("value", [5, None, ["nested"], {"a": "b"}, True],
                         ids=["int", "null", "list", "dict", "bool"])
def test_non_string_repo_tag_is_refused(scene, value):
    data = docker_archive([some_layer()], tags=("test/fine:1", value))
    scene.refuse(data, r"non-string tag|tag")


@pytest.mark.parametrize("value", ["test/img:1", "abc", {"test/img:1": 1}, 7],
                         ids=["string", "string-of-letters", "dict", "int"])
def test_repo_tags_not_a_list(scene, value):
    """RepoTags must be a list (or null); a string must not be taken apart into one-letter
    images (``"abc"`` -> ``a:latest``, ``b:latest``, ``c:latest``), a dict must not lend its
    keys. Refusal is expected; for a plain string, loading exactly that one tag is tolerated."""
    members, entry = docker_parts([some_layer()])
    entry["RepoTags"] = value
    data = docker_pack(members, [entry])
    source = scene.write(data)
    before = snapshot(scene.top, scene.root)
    proc = scene.load(source)
    scene.assert_untouched(before)
    if proc.returncode == 0 and isinstance(value, str) and "/" in value:
        assert proc.stdout.decode().splitlines() == ["Loaded image: test/img:1"], proc.stdout
        return
    assert_one_line_error(proc, r"RepoTags|tag")
    assert scene.image_ids() == []
    scene.assert_no_work_dirs("after the refused load")
    scene.assert_store_usable()


@pytest.mark.parametrize("ref", ["../../evil:1", "x/y:1\nz", "up/PER:1", "a/" + "b" * 300 + ":1"],
                         ids=["dotdot", "newline", "uppercase", "long"])
def test_hostile_oci_ref_name_is_refused(scene, ref):
    scene.refuse(oci_archive([some_layer()], ref=ref), r"tag|reference")


# -- all or nothing -----------------------------------------------------------------------------

def _two_docker_images(case):
    first, second = some_layer("first"), some_layer("second")
    m1, e1 = docker_parts([first], tags=("test/first:1",))
    m2, e2 = docker_parts([layer(d("x")), second], tags=("test/second:1",))
    if case == "bad-tag":
        e2["RepoTags"] = ["../../evil"]
    elif case == "layer-digest-mismatch":
        m2[e2["Layers"][1]] = some_layer("tampered")
    elif case == "missing-layer":
        del m2[e2["Layers"][1]]
    elif case == "missing-config":
        del m2[e2["Config"]]
    elif case == "hostile-layer":
        bad = layer(f("../../outside/victim", b"pwned\n"))
        m2, e2 = docker_parts([bad], tags=("test/second:1",))
    elif case == "truncated-layer":
        full = _big_layer()
        m2, e2 = docker_parts([full], tags=("test/second:1",))
        m2[e2["Layers"][0]] = full[: len(full) // 2]
    else:
        raise AssertionError(case)
    members = dict(m1)
    members.update(m2)
    return docker_pack(members, [e1, e2])


ALL_OR_NOTHING = {
    "bad-tag": r"tag",
    "layer-digest-mismatch": r"config says",
    "missing-layer": r"no member",
    "missing-config": r"no member",
    "hostile-layer": OUTSIDE_LAYER,
    "truncated-layer": TRUNCATED,
}


@pytest.mark.parametrize("case", sorted(ALL_OR_NOTHING))
def test_second_image_bad_lists_nothing_from_the_archive(scene, case):
    scene.refuse(_two_docker_images(case), ALL_OR_NOTHING[case])


@pytest.mark.parametrize("case", ["layer-tampered", "hostile-layer", "bad-ref"])
def test_second_oci_image_bad_lists_nothing(scene, case):
    first, second = some_layer("first"), some_layer("second")
    m1, d1, _ = oci_parts([first], ref="docker.io/test/first:1")
    if case == "hostile-layer":
        m2, d2, _ = oci_parts([layer(sym("esc", scene.outside), f("esc/pwned"))], ref="docker.io/test/second:1")
        pattern = r"not a directory"
    else:
        m2, d2, man2 = oci_parts([second], ref="docker.io/test/second:1")
        pattern = MISMATCH
        if case == "layer-tampered":
            m2[blob_name_of(man2["layers"][0])] = gzip.compress(some_layer("tampered"), mtime=0)
        else:
            d2["annotations"]["org.opencontainers.image.ref.name"] = "../../evil:1"
            pattern = r"tag|reference"
    members = dict(m1)
    members.update(m2)
    scene.refuse(oci_pack(members, [d1, d2]), pattern)


def test_first_image_loaded_earlier_stays_listed(scene):
    """A refused archive does not take away what an earlier load listed."""
    first = some_layer("first")
    members, entry = docker_parts([first], tags=("test/first:1",))
    path = scene.write(docker_pack(members, [entry]), "first.tar")
    assert scene.rl("load", "-i", path, check=False).returncode == 0
    listed = scene.image_ids()
    assert listed == [sha(members[entry["Config"]])]
    data = _two_docker_images("layer-digest-mismatch")
    proc = scene.load(scene.write(data))
    assert_one_line_error(proc, r"config says")
    assert scene.image_ids() == listed
    scene.assert_no_work_dirs("after the refused load")


# -- not archives at all ------------------------------------------------------------------------

NOT_AN_ARCHIVE = r"not an image archive|neither manifest.json|empty|invalid|no such|cannot open"


def test_random_bytes(scene):
    scene.refuse(b"RND!" + pseudo_random(64 * 1024), NOT_AN_ARCHIVE)


def test_empty_file(scene):
    scene.refuse(b"", NOT_AN_ARCHIVE)


def test_tar_that_is_not_an_image(scene):
    scene.refuse(pack({"hello.txt": b"hi\n", "etc/passwd": b"root:x:0:0::/:/bin/sh\n"}), r"neither manifest.json")


@pytest.mark.parametrize("content", ["empty", "only-oci-layout", "index-dir"])
def test_directory_without_index_json(scene, content):
    top = os.path.join(scene.inbox, "notalayout")
    os.makedirs(top)
    if content == "only-oci-layout":
        with open(os.path.join(top, "oci-layout"), "w") as fh:
            fh.write('{"imageLayoutVersion":"1.0.0"}')
    elif content == "index-dir":
        os.mkdir(os.path.join(top, "index.json"))
    scene.refuse(None, r"neither manifest.json|no regular file", path=top)


def test_missing_file(scene):
    scene.refuse(None, r"cannot open|no such", path=os.path.join(scene.inbox, "absent.tar"))


@pytest.mark.parametrize("case", ["traversal", "symlink-escape", "random", "empty", "gzip-traversal",
                                  "truncated", "gzip-truncated"])
def test_hostile_archive_on_stdin(scene, case):
    bad = layer(f(scene.up_to_outside(5), b"pwned\n"))
    data = {
        "traversal": lambda: docker_archive([bad]),
        "symlink-escape": lambda: oci_archive([layer(sym("esc", scene.outside), f("esc/pwned"))]),
        "random": lambda: b"RND!" + pseudo_random(8192),
        "empty": lambda: b"",
        "gzip-traversal": lambda: gzip.compress(docker_archive([bad]), mtime=0),
        "truncated": lambda: docker_archive([_big_layer()])[:100000],
        "gzip-truncated": lambda: gzip.compress(docker_archive([_big_layer()]), mtime=0)[:50000],
    }[case]()
    pattern = {"traversal": OUTSIDE_LAYER, "gzip-traversal": OUTSIDE_LAYER,
               "symlink-escape": r"not a directory"}.get(case, NOT_AN_ARCHIVE + "|" + TRUNCATED)
    proc = scene.refuse(None, pattern, stdin=data)
    # The archive came from stdin: naming the store's own spool file (already deleted) as
    # "not an image archive" would send the user looking for a file that never was theirs.
    line = proc.stderr.decode(errors="replace")
    assert os.path.join(scene.root, "tmp") not in line, line


# -- abandoned work ---------------------------------------------------------------------------

def test_load_killed_midway_leaves_work_that_the_next_load_collects(scene):
    """kill -9 during a load (here: while spooling stdin) leaves a work dir whose lock is
    free; the store's docstring promises ``collect_garbage`` removes it, and ``load`` runs
    it first. Nothing of the killed load is listed meanwhile."""
    data = docker_archive([_big_layer()])
    before = snapshot(scene.top, scene.root)
    proc = scene.rl.popen("load", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, cwd=scene.cwd)
    try:
        proc.stdin.write(data[: len(data) // 2])
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while not any(n.startswith("load-") and not n.endswith(".lock") for n in scene.work_dirs()):
            assert time.monotonic() < deadline, "the load never made its work dir"
            assert proc.poll() is None, "the load ended before it was killed"
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
        try:
            proc.stdin.close()
        except OSError:
            pass
    assert scene.work_dirs(), "expected the killed load's work dir to remain until collected"
    scene.assert_untouched(before)
    assert scene.image_ids() == []
    scene.assert_store_usable()  # asserts tmp/ is empty after the next load


# -- tags that are hard to parse ------------------------------------------------------------------

@pytest.mark.parametrize("tag", [
    "a" * 60 + "!.example.com/x:1",
    "a-" * 120 + "!.io/x:1",
    "[" + ":" * 200 + "/x:1",
    "a" * 100 + "." + "b" * 100 + "!:5000/x:1",
], ids=["label-run", "dash-run", "ipv6-colons", "two-runs"])
def test_pathological_repo_tags_are_refused_quickly(scene, tag):
    """Hostile RepoTags must not make reference parsing backtrack for minutes."""
    path = scene.write(docker_archive([some_layer()], tags=(tag,)))
    started = time.monotonic()
    try:
        proc = scene.rl("load", "-i", path, check=False, cwd=scene.cwd, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("load of a hostile tag ran for over 60 s (regex backtracking?)")
    assert time.monotonic() - started < 30
    assert_one_line_error(proc, r"tag|reference|host")
    assert scene.image_ids() == []
    scene.assert_store_usable()


# -- sparse tar members ---------------------------------------------------------------------------

def _octal(n: int, width: int) -> bytes:
    if n < 8 ** (width - 1):
        return ("%0*o" % (width - 1, n)).encode() + b"\0"
    return b"\x80" + n.to_bytes(width - 1, "big")  # GNU base-256 for large numbers


def gnu_sparse_member(name: str, realsize: int, data: bytes = b"X") -> bytes:
    """An old-GNU sparse member ('S'): ``realsize`` bytes of holes and ``data`` at the end,
    storing only ``data`` in the tar (tarfile reads these; it cannot write them)."""
    h = bytearray(512)

    def put(off, b):
        h[off:off + len(b)] = b
    put(0, name.encode())
    put(100, _octal(0o644, 8))
    put(108, _octal(0, 8))
    put(116, _octal(0, 8))
    put(124, _octal(len(data), 12))
    put(136, _octal(1700000000, 12))
    put(156, b"S")
    put(257, b"ustar  \0")
    put(386, _octal(realsize - len(data), 12))  # sparse map: one region at the end
    put(398, _octal(len(data), 12))
    put(483, _octal(realsize, 12))  # the size the file unpacks to
    put(148, b" " * 8)
    put(148, ("%06o" % sum(h)).encode() + b"\0 ")
    return bytes(h) + data + b"\0" * (-len(data) % 512)


def test_sparse_member_counts_toward_the_layer_size_guard(scene):
    """A 1.5 kB layer whose one GNU sparse member unpacks to 64 MiB: the guard is on what a
    layer unpacks to, so ``--max-layer-size 8m`` must refuse it (or refuse sparse members)."""
    bomb = gnu_sparse_member("big", 64 * MIB) + b"\0" * 1024
    path = scene.write(oci_archive([bomb]))
    before = snapshot(scene.top, scene.root)
    proc = scene.rl("load", "--max-layer-size", "8m", "-i", path, check=False, cwd=scene.cwd)
    scene.assert_untouched(before)
    assert_one_line_error(proc, r"decompression bomb|max-layer-size|sparse")
    assert scene.image_ids() == []
    scene.assert_no_work_dirs("after the refused load")
    scene.assert_store_usable()


def test_sparse_member_of_a_terabyte_is_refused_quickly(scene):
    """With the default guard (64 GiB), a sparse member claiming 1 TiB must be refused
    promptly, not expanded (as zeros, through Python) for half an hour."""
    bomb = gnu_sparse_member("huge", 1 << 40) + b"\0" * 1024
    path = scene.write(oci_archive([bomb]))
    before = snapshot(scene.top, scene.root)
    try:
        proc = scene.rl("load", "-i", path, check=False, cwd=scene.cwd, timeout=60)
    except subprocess.TimeoutExpired:
        scene.assert_untouched(before)
        scene.assert_store_usable()  # the next load collects the killed load's work dir
        pytest.fail("a 1.5 kB archive with a 1 TiB sparse member kept load busy for over 60 s")
    scene.assert_untouched(before)
    assert_one_line_error(proc, r"decompression bomb|max-layer-size|sparse")
    assert scene.image_ids() == []
    scene.assert_store_usable()


# -- device nodes -------------------------------------------------------------------------------

def test_device_nodes_are_skipped_and_reported(scene):
    devices = layer(
        d("dev"),
        {"name": "dev/null", "type": "chr", "major": 1, "minor": 3},
        {"name": "dev/sda", "type": "blk", "major": 8, "minor": 0},
        {"name": "dev/kmsg", "type": "chr", "major": 1, "minor": 11},
        {"name": "dev/fifo", "type": "fifo"},
        f("etc/ok", b"ok\n"),
    )
    proc = scene.accept(docker_archive([devices]), debug=True)
    diff = scene.layer_diff(sha(devices))
    assert special_files(diff) == []
    for name in ("null", "sda", "kmsg"):
        assert not os.path.lexists(os.path.join(diff, "dev", name))
    assert stat.S_ISFIFO(os.lstat(os.path.join(diff, "dev", "fifo")).st_mode)
    with open(os.path.join(diff, "etc", "ok"), "rb") as fh:
        assert fh.read() == b"ok\n"
    err = proc.stderr.decode(errors="replace")
    for name in ("/dev/null", "/dev/sda", "/dev/kmsg"):
        assert re.search(r"skipped device node %s\b" % re.escape(name), err), err
    with open(os.path.join(os.path.dirname(diff), "meta.json")) as fh:
        meta = json.load(fh)
    assert sorted(meta["record"]["skipped_devices"]) == ["dev/kmsg", "dev/null", "dev/sda"]
    scene.assert_store_usable()


def test_device_nodes_without_debug_say_nothing(scene):
    devices = layer({"name": "dev/null", "type": "chr", "major": 1, "minor": 3}, f("ok"))
    proc = scene.accept(docker_archive([devices]))
    assert b"skipped" not in proc.stderr
    assert special_files(scene.layer_diff(sha(devices))) == []


def test_device_node_named_outside_is_refused(scene):
    bad = layer({"name": "../" * 5 + "outside/dev", "type": "chr", "major": 1, "minor": 3})
    scene.refuse(docker_archive([bad]), OUTSIDE_LAYER)


def test_device_node_through_a_symlink_is_harmless(scene):
    """A device below a symlink is skipped (or the layer refused); nothing is made."""
    devs = layer(sym("esc", scene.outside_dir), {"name": "esc/null", "type": "chr", "major": 1, "minor": 3})
    scene.either(docker_archive([devs]), r"not a directory")
    assert os.listdir(scene.outside_dir) == ["inner"]
    scene.assert_store_usable()
