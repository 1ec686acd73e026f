"""scripts/busybox-image: a busybox image from Debian's busybox-static, with no root and no
registry (the README's quick start runs it; tests/cli/test_readme.py runs that verbatim).

Each source is tried here without the network: the host's static busybox, a
busybox-static .deb (built here with dpkg-deb around the host's binary, as Debian ships
it), and the errors with their remedy when there is no usable busybox.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from conftest import REPO, have, need

SCRIPT = os.path.join(REPO, "scripts", "busybox-image")
HOST_BUSYBOX = "/bin/busybox"


def script(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, env=env, cwd=cwd,
                          timeout=300)


@pytest.fixture
def static_busybox():
    need(os.path.exists(HOST_BUSYBOX), "busybox-static's %s (bash .ci/run installs it)" % HOST_BUSYBOX)
    with open(HOST_BUSYBOX, "rb") as f:
        return f.read()


def read_archive(path):
    """(manifest entry, config, {name: TarInfo}, busybox bytes) of a one-image docker-archive."""
    with tarfile.open(path) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        assert len(manifest) == 1
        entry = manifest[0]
        config_bytes = outer.extractfile(entry["Config"]).read()
        assert entry["Config"] == hashlib.sha256(config_bytes).hexdigest() + ".json"
        layer = outer.extractfile(entry["Layers"][0]).read()
    config = json.loads(config_bytes)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        members = {m.name: m for m in inner.getmembers()}
        binary = inner.extractfile("bin/busybox").read()
    return entry, config, members, binary


def test_the_hosts_static_busybox_becomes_a_reproducible_image(tmp_path, static_busybox):
    proc = script(cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr.decode()
    assert "wrote busybox.tar" in proc.stderr.decode() and "load -i busybox.tar" in proc.stderr.decode()
    entry, config, members, binary = read_archive(str(tmp_path / "busybox.tar"))
    assert entry["RepoTags"] == ["busybox:latest"]
    assert config["config"]["Cmd"] == ["sh"] and config["os"] == "linux" and config["architecture"]
    assert binary == static_busybox
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "/bin/busybox"
    assert members["tmp"].mode == 0o1777 and members["root"].mode == 0o700
    assert {"etc/passwd", "etc/group"} <= set(members)
    again = script(str(tmp_path / "again.tar"), "-t", "busybox:latest")
    assert again.returncode == 0
    assert (tmp_path / "again.tar").read_bytes() == (tmp_path / "busybox.tar").read_bytes()


def test_a_busybox_static_deb(tmp_path, static_busybox):
    need(have("dpkg-deb"), "dpkg-deb (every Debian and Ubuntu has it)")
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "usr" / "bin").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: busybox-static\nVersion: 1:0-test\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: test\n")
    (pkg / "usr" / "bin" / "busybox").write_bytes(static_busybox)
    os.chmod(str(pkg / "usr" / "bin" / "busybox"), 0o755)
    deb = tmp_path / "busybox-static.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(pkg), str(deb)],
                   check=True, capture_output=True)
    proc = script("--from", str(deb), "-t", "tools/bb:1", str(tmp_path / "out.tar"))
    assert proc.returncode == 0, proc.stderr.decode()
    entry, _, members, binary = read_archive(str(tmp_path / "out.tar"))
    assert entry["RepoTags"] == ["tools/bb:1"] and binary == static_busybox
    assert "bin/ls" in members


def test_no_usable_busybox_is_an_error_with_the_remedy(tmp_path):
    dynamic = "/bin/ls"  # a dynamically linked program on any Debian or Ubuntu
    proc = script("--from", dynamic, str(tmp_path / "x.tar"))
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "dynamically linked" in err and "apt-get install busybox-static" in err
    # no apt-get on PATH: nothing to fetch busybox-static with
    proc = script("--from", "apt", str(tmp_path / "x.tar"), env={"PATH": str(tmp_path)})
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert err.startswith("busybox-image: error: ") and "apt-get install busybox-static" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "x.tar").exists()
