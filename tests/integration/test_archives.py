"""Loading and saving the test images that skopeo and umoci wrote, checked against podman
and skopeo themselves.  The archives come from scripts/build-test-images."""

import json
import os
import signal
import stat
import subprocess
import tarfile
import time

import pytest

from conftest import have, need
from imagetools import docker_archive, sha, tar_bytes

BUSYBOX = ["busybox-docker.tar", "busybox-oci.tar", "busybox-oci"]
DEBIAN = ["debian-docker.tar", "debian-oci.tar", "debian-oci", "debian-docker.tar.gz"]


def image_ids(rl):
    return sorted(set(rl.out("images", "-q", "--no-trunc").split()))


def inspect(rl, name):
    return json.loads(rl.out("image", "inspect", name))[0]


@pytest.mark.parametrize("archive", BUSYBOX + DEBIAN)
def test_skopeo_and_umoci_archives_load_with_their_image_id(rl, test_images, image_ids, archive):
    out = rl.out("load", "-i", os.path.join(test_images, archive))
    assert out.startswith("Loaded image")
    assert image_ids_of(rl) == [image_ids[archive]]
    if archive.endswith("docker.tar"):
        name = archive.split("-")[0] + ":latest"
        assert out.strip() == "Loaded image: " + name
        assert inspect(rl, name)["Id"] == image_ids[archive]


def image_ids_of(rl):
    return image_ids(rl)


def test_load_from_stdin_gzip(rl, test_images, image_ids):
    with open(os.path.join(test_images, "debian-docker.tar.gz"), "rb") as f:
        proc = rl("load", stdin=f)
    assert proc.stdout.decode().strip() == "Loaded image: debian:latest"
    assert image_ids_of(rl) == [image_ids["debian-docker.tar.gz"]]


def test_debian_layers_keep_whiteouts_modes_sparse_and_owners(rl, test_images):
    rl("load", "-i", os.path.join(test_images, "debian-docker.tar"))
    info = inspect(rl, "debian")
    layers = info["RootFS"]["Layers"]
    assert len(layers) == 2
    top = os.path.join(rl.root, "layers", layers[1][7:])
    meta = json.load(open(os.path.join(top, "meta.json")))
    assert "etc/issue.net" in meta["record"]["whiteouts"]
    assert any(w in ("usr/share/doc/apt",) for w in meta["record"]["whiteouts"] + meta["record"]["opaque_dirs"])
    diff = os.path.join(top, "diff")
    sparse = os.stat(os.path.join(diff, "var/sparse.img"))
    assert sparse.st_size == 16 << 20 and sparse.st_blocks * 512 < 1 << 20
    ro = os.stat(os.path.join(diff, "opt/ro-dir"))
    assert ro.st_mode & 0o777 == 0o500
    assert open(os.path.join(diff, "opt/ro-dir/inside")).read() == "inside\n"
    assert meta["record"]["owners"]["opt/owned-by-42"] == [42, 42]
    assert os.stat(os.path.join(diff, "opt/owned-by-42")).st_uid == os.getuid()


def tree_listing(top):
    """Every path below ``top`` with its type, mode, size, allocated blocks and content digest."""
    rows = []
    for dirpath, dirs, files in os.walk(top):
        for name in sorted(dirs + files):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = ""
            if os.path.islink(path):
                digest = os.readlink(path)
            elif os.path.isfile(path) and st.st_mode & 0o400:
                with open(path, "rb") as f:
                    digest = sha(f.read())
            mtime = None if stat.S_ISCHR(st.st_mode) else int(st.st_mtime)  # whiteouts: made now
            rows.append((os.path.relpath(path, top), st.st_mode, st.st_size, st.st_blocks > 0, mtime, digest))
    return sorted(rows)


def test_layers_read_in_place_and_streamed_come_out_the_same(rl, test_images, tmp_path):
    """An uncompressed layer in an archive that only we (or root) can change is read in
    place; in one that others could change it is streamed and hashed in the same pass.
    Both must give the same files, records and saved bytes."""
    from conftest import Rootless
    shared = tmp_path / "shared.tar"
    with open(os.path.join(test_images, "debian-docker.tar"), "rb") as src, open(shared, "wb") as dst:
        dst.write(src.read())
    os.chmod(shared, 0o666)
    other = Rootless(str(tmp_path / "other-root"))
    fast = rl("--debug", "load", "-i", os.path.join(test_images, "debian-docker.tar")).stderr.decode()
    slow = other("--debug", "load", "-i", str(shared)).stderr.decode()
    assert "read in place" in fast and "streamed" not in fast
    assert "others could change the file meanwhile" in slow and "read in place" not in slow
    layers = inspect(rl, "debian")["RootFS"]["Layers"]
    assert inspect(other, "debian")["RootFS"]["Layers"] == layers
    for d in layers:
        a, b = (os.path.join(r.root, "layers", d[7:]) for r in (rl, other))
        assert tree_listing(os.path.join(a, "diff")) == tree_listing(os.path.join(b, "diff"))
        meta_a, meta_b = (json.load(open(os.path.join(x, "meta.json"))) for x in (a, b))
        assert meta_a == meta_b
    saved = [sha(r("save", "debian").stdout) for r in (rl, other)]
    assert saved[0] == saved[1]


def test_whiteouts_apply_across_layers_when_flattened(rl, test_images, tmp_path):
    from rootless.storage.copy import flatten
    rl("load", "-i", os.path.join(test_images, "debian-oci.tar"))
    layers = inspect(rl, rl.out("images", "-q").split()[0])["RootFS"]["Layers"]
    pairs = []
    for d in layers:
        base = os.path.join(rl.root, "layers", d[7:])
        pairs.append((os.path.join(base, "diff"), json.load(open(os.path.join(base, "meta.json")))["record"]))
    dest = tmp_path / "rootfs"
    dest.mkdir()
    flatten(pairs, str(dest))
    lower = pairs[0][0]
    # What layer 2 whites out was there in layer 1, and is gone; its siblings all stay.
    assert os.path.isfile(os.path.join(lower, "etc/issue.net")) and not os.path.lexists(dest / "etc/issue.net")
    lower_docs = set(os.listdir(os.path.join(lower, "usr/share/doc")))
    assert "apt" in lower_docs and "dpkg" in lower_docs
    assert set(os.listdir(dest / "usr/share/doc")) == lower_docs - {"apt"}
    assert set(os.listdir(dest / "etc")) == set(os.listdir(os.path.join(lower, "etc"))) - {"issue.net"} | {"rootless-test"}
    assert (dest / "etc/rootless-test/added").read_text() == "added\n"
    assert (dest / "etc/debian_version").read_text() == "changed\n"
    # bookworm's merged /usr: /bin is a symlink into /usr, and bash is a real file there.
    assert os.readlink(dest / "bin") == "usr/bin" and os.path.isfile(dest / "usr/bin/bash")


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_round_trip_keeps_id_and_diff_ids(rl, test_images, tmp_path, fmt):
    from conftest import Rootless
    rl("load", "-i", os.path.join(test_images, "debian-docker.tar"))
    before = inspect(rl, "debian")
    out = tmp_path / "saved.tar"
    rl("save", "--format", fmt, "-o", str(out), "debian")
    other = Rootless(str(tmp_path / "root2"))
    text = other.out("load", "-i", str(out))
    assert "debian:latest" in text
    after = inspect(other, "debian")
    assert after["Id"] == before["Id"]
    assert after["RootFS"]["Layers"] == before["RootFS"]["Layers"]


def test_save_is_deterministic_and_to_stdout(rl, test_images, tmp_path):
    rl("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    rl("save", "-o", str(a), "busybox")
    with open(b, "wb") as f:
        rl("save", "busybox", stdout=f)
    assert a.read_bytes() == b.read_bytes()
    names = tarfile.open(a).getnames()
    assert "manifest.json" in names


@pytest.mark.needs_subuid
@pytest.mark.parametrize("archive", ["busybox-docker.tar", "debian-oci.tar"])
def test_image_id_is_what_podman_shows(rl, podman, test_images, archive):
    path = os.path.join(test_images, archive)
    rl("load", "-i", path)
    podman("load", "-i", path)
    theirs = podman("images", "--no-trunc", "--format", "{{.ID}}").split()
    ours = [i[7:] for i in image_ids(rl)]
    assert [t.replace("sha256:", "") for t in theirs] == ours


@pytest.mark.needs_subuid
@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_saved_archive_loads_in_podman_and_reads_in_skopeo(rl, podman, test_images, tmp_path, fmt):
    need(have("skopeo"), "skopeo is not installed")
    rl("load", "-i", os.path.join(test_images, "debian-docker.tar"))
    ours = inspect(rl, "debian")
    out = tmp_path / "saved.tar"
    rl("save", "--format", fmt, "-o", str(out), "debian")
    podman("load", "-i", str(out))
    theirs = podman("images", "--no-trunc", "--format", "{{.ID}}").split()
    assert [t.replace("sha256:", "") for t in theirs] == [ours["Id"][7:]]
    transport = "docker-archive" if fmt == "docker-archive" else "oci-archive"
    config = json.loads(subprocess.run(["skopeo", "inspect", "--config", "%s:%s" % (transport, out)],
                                       capture_output=True, check=True).stdout)
    assert config["rootfs"]["diff_ids"] == ours["RootFS"]["Layers"]
    raw = subprocess.run(["skopeo", "inspect", "--raw", "%s:%s" % (transport, out)],
                         capture_output=True, check=True).stdout
    assert json.loads(raw)["config"]["digest"] == ours["Id"]


def many_files_archive(path, count=15000):
    """An image whose one layer holds ``count`` small files: unpacking it takes seconds,
    while noticing that it has started takes one look at the work dir."""
    entries = [{"name": "d%03d" % i, "type": "dir"} for i in range(count // 200)]
    entries += [{"name": "d%03d/f%05d" % (i // 200, i), "data": b"%d\n" % i} for i in range(count)]
    with open(path, "wb") as f:
        f.write(docker_archive([tar_bytes(entries)], tags=["many/files:latest"]))
    return str(path)


def test_kill_9_during_load_leaves_no_partial_image(rl, tmp_path):
    archive = many_files_archive(tmp_path / "many.tar")
    proc = rl.popen("load", "-i", archive, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = os.path.join(rl.root, "tmp")
    # Wait until the unpack is under way (files are appearing in a work dir), then kill.
    assert wait_for(lambda: proc.poll() is not None or _work_files(tmp, more_than=200), 60)
    assert proc.poll() is None, "load finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _work_files(tmp, more_than=200)  # the killed load left work behind...
    assert rl.out("images", "-q") == ""  # ...but no image is listed
    out = rl.out("load", "-i", archive)
    assert out.strip() == "Loaded image: many/files:latest"
    assert len(image_ids(rl)) == 1
    leftovers = [n for n in os.listdir(tmp)]
    assert leftovers == [], leftovers  # the next command collected the abandoned work
    diff = os.path.join(rl.root, "layers", inspect(rl, "many/files")["RootFS"]["Layers"][0][7:], "diff")
    assert sum(len(files) for _, _, files in os.walk(diff)) == 15000


def wait_for(condition, timeout):
    """Poll ``condition`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _work_files(tmp, more_than):
    """Whether the work dirs below ``tmp`` hold more than ``more_than`` files."""
    count = 0
    for _, _, files in os.walk(tmp):
        count += len(files)
        if count > more_than:
            return True
    return False


def test_concurrent_loads_sharing_a_layer_store_it_once(rl, test_images, tmp_path):
    base = tar_bytes([{"name": "bin", "type": "dir"}] +
                     [{"name": "bin/f%03d" % i, "data": os.urandom(2048)} for i in range(300)])
    archives = []
    for n in range(2):
        top = tar_bytes([{"name": "which", "data": b"image %d\n" % n}])
        path = tmp_path / ("img%d.tar" % n)
        path.write_bytes(docker_archive([base, top], tags=["shared/img%d:latest" % n]))
        archives.append(str(path))
    rl("images")  # create the store first so both loads race on layers, not on set-up
    procs = [rl.popen("--debug", "load", "-i", a, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for a in archives]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    for out, err, code in results:
        assert code == 0, err.decode()
    assert len(image_ids(rl)) == 2
    # One load unpacked the shared layer; the other found it (before or after its lock).
    said = b"".join(err for _, err, _ in results).decode()
    short = sha(base)[:19]
    assert said.count("layer %s unpacked in" % short) == 1, said
    assert said.count("layer %s already present" % short) + said.count(
        "layer %s unpacked meanwhile by another command" % short) == 1, said
    layer_dirs = os.listdir(os.path.join(rl.root, "layers"))
    assert sorted(layer_dirs) == sorted(l[7:] for l in inspect(rl, "shared/img0")["RootFS"]["Layers"] +
                                        inspect(rl, "shared/img1")["RootFS"]["Layers"][1:])
    assert len(os.listdir(os.path.join(rl.root, "layers", sha(base)[7:], "diff", "bin"))) == 300
    assert os.listdir(os.path.join(rl.root, "tmp")) == []
    # Layers are not kept twice: the store holds 2 configs and 2 manifests as blobs, and
    # each layer's tar stream is rebuilt from its files (tar-split) when saved.
    blobs = os.listdir(os.path.join(rl.root, "blobs", "sha256"))
    assert sha(base)[7:] not in blobs and len(blobs) == 4
