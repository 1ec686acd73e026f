"""images, tag, rmi, history, image inspect, image prune, import and system df."""

import json
import os
import re
import subprocess
import tarfile


from imagetools import config_for, docker_archive, sha, tar_bytes


def small_image(tmp_path, name="demo/app:1", content=b"hello\n", labels=None, created="2024-01-02T03:04:05Z"):
    layer = tar_bytes([{"name": "etc", "type": "dir"}, {"name": "etc/greeting", "data": content}])
    extra = {"created": created}
    config = json.loads(config_for([layer]))
    config.update(extra)
    if labels:
        config["config"]["Labels"] = labels
    cfg = json.dumps(config).encode()
    path = tmp_path / (sha(cfg)[7:15] + ".tar")
    path.write_bytes(docker_archive([layer], tags=[name] if name else [], config=cfg))
    return str(path), sha(cfg)


def test_images_table_and_columns(rl, tmp_path):
    path, image_id = small_image(tmp_path)
    assert rl.out("load", "-i", path).strip() == "Loaded image: demo/app:1"
    lines = rl.out("images").splitlines()
    assert re.split(r"\s{3,}", lines[0]) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    row = re.split(r"\s{3,}", lines[1])
    assert row[:3] == ["demo/app", "1", image_id[7:19]]
    assert row[3].endswith("ago") and row[4].endswith("B")
    assert rl.out("images", "-q").split() == [image_id[7:19]]
    assert rl.out("images", "-q", "--no-trunc").split() == [image_id]
    assert "DIGEST" in rl.out("images", "--digests").splitlines()[0]
    assert rl.out("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").strip() == "demo/app:1 " + image_id[7:19]
    obj = json.loads(rl.out("images", "--format", "json"))
    assert obj["Repository"] == "demo/app" and obj["ID"] == image_id[7:19]
    table = rl.out("images", "--format", "table {{.ID}}\\t{{.Repository}}").splitlines()
    assert table[0].split() == ["IMAGE", "ID", "REPOSITORY"]


def test_images_filters(rl, tmp_path):
    a, id_a = small_image(tmp_path, "demo/a:1", b"a", labels={"team": "x"}, created="2024-01-01T00:00:00Z")
    b, id_b = small_image(tmp_path, "other/b:2", b"b", created="2024-02-01T00:00:00Z")
    rl("load", "-i", a)
    rl("load", "-i", b)
    assert rl.out("images", "-q", "-f", "reference=demo/*").split() == [id_a[7:19]]
    assert rl.out("images", "-q", "other/b").split() == [id_b[7:19]]
    assert rl.out("images", "-q", "-f", "label=team=x").split() == [id_a[7:19]]
    assert rl.out("images", "-q", "-f", "since=demo/a:1").split() == [id_b[7:19]]
    assert rl.out("images", "-q", "-f", "before=other/b:2").split() == [id_a[7:19]]
    assert rl.out("images", "-q", "-f", "dangling=true").split() == []
    assert rl("images", "-f", "bogus=1", check=False).returncode == 125


def test_tag_untag_and_delete(rl, tmp_path):
    path, image_id = small_image(tmp_path)
    rl("load", "-i", path)
    rl("tag", "demo/app:1", "localhost:5000/demo/app:2")
    rows = rl.out("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert sorted(rows) == ["demo/app:1", "localhost:5000/demo/app:2"]
    assert rl.out("rmi", "demo/app:1").strip() == "Untagged: demo/app:1"
    assert rl.out("images", "-q").split() == [image_id[7:19]]
    out = rl.out("rmi", "localhost:5000/demo/app:2").splitlines()
    assert out == ["Untagged: localhost:5000/demo/app:2", "Deleted: " + image_id]
    assert rl.out("images", "-q") == ""
    # nothing is left in the store once the last image is gone
    assert os.listdir(os.path.join(rl.root, "layers")) == []
    assert os.listdir(os.path.join(rl.root, "blobs", "sha256")) == []


def test_rmi_by_id_with_several_tags_needs_force(rl, tmp_path):
    path, image_id = small_image(tmp_path)
    rl("load", "-i", path)
    rl("tag", "demo/app:1", "demo/app:2")
    proc = rl("rmi", image_id[7:19], check=False)
    assert proc.returncode == 125 and "multiple repositories" in proc.stderr.decode()
    out = rl.out("rmi", "-f", image_id[7:19])
    assert "Deleted: " + image_id in out
    proc = rl("rmi", "nope:latest", check=False)
    assert proc.returncode == 125 and "no such image" in proc.stderr.decode()


def test_retag_moves_the_tag_and_leaves_a_dangling_image(rl, tmp_path):
    a, id_a = small_image(tmp_path, "demo/app:1", b"a")
    b, id_b = small_image(tmp_path, "demo/app:1", b"b")
    rl("load", "-i", a)
    rl("load", "-i", b)
    rows = rl.out("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}").splitlines()
    assert sorted(rows) == sorted(["demo/app 1 " + id_b[7:19], "<none> <none> " + id_a[7:19]])
    assert rl.out("images", "-q", "-f", "dangling=true").split() == [id_a[7:19]]
    out = rl.out("image", "prune", "-f")
    assert "deleted: " + id_a in out and "Total reclaimed space:" in out
    assert rl.out("images", "-q").split() == [id_b[7:19]]
    rl("image", "prune", "-a", "-f")
    assert rl.out("images", "-q") == ""


def test_image_inspect_and_format(rl, tmp_path):
    path, image_id = small_image(tmp_path)
    rl("load", "-i", path)
    obj = json.loads(rl.out("image", "inspect", "demo/app:1"))[0]
    for key in ("Id", "RepoTags", "RepoDigests", "Created", "Config", "RootFS", "Architecture", "Os", "Size"):
        assert key in obj
    assert obj["Id"] == image_id and obj["RepoTags"] == ["demo/app:1"]
    assert obj["RootFS"]["Type"] == "layers" and len(obj["RootFS"]["Layers"]) == 1
    assert obj["Config"]["Cmd"] == ["sh"]
    assert rl.out("inspect", "-f", "{{.Id}} {{.Os}}", "demo/app:1").strip() == image_id + " linux"
    # Docker's inspect: the ones found (none here), then its error line, exit 1.
    proc = rl("image", "inspect", "missing", check=False)
    assert proc.returncode == 1 and proc.stdout.decode().strip() == "[]"
    assert proc.stderr.decode() == "Error: No such image: missing\n"


def test_history(rl, tmp_path):
    path, image_id = small_image(tmp_path)
    rl("load", "-i", path)
    lines = rl.out("history", "demo/app:1").splitlines()
    assert re.split(r"\s{3,}", lines[0]) == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    assert lines[1].startswith(image_id[7:19]) and "test layer 0" in lines[1]
    assert rl.out("history", "-q", "demo/app:1").split() == [image_id[7:19]]


def test_import_tarball_and_stdin(rl, tmp_path):
    rootfs = tar_bytes([{"name": "bin", "type": "dir"}, {"name": "bin/hello", "data": b"#!/bin/sh\necho hi\n", "mode": 0o755}])
    path = tmp_path / "rootfs.tar"
    path.write_bytes(rootfs)
    image_id = rl.out("import", str(path), "imported/fs:v1").strip()
    assert image_id.startswith("sha256:")
    obj = json.loads(rl.out("image", "inspect", "imported/fs:v1"))[0]
    assert obj["Id"] == image_id and obj["RootFS"]["Layers"] == [sha(rootfs)]
    gz = tmp_path / "rootfs.tar.gz"
    import gzip
    gz.write_bytes(gzip.compress(rootfs))
    with open(gz, "rb") as f:
        second = rl.out("import", "-", stdin=f).strip()
    assert json.loads(rl.out("image", "inspect", second))[0]["RootFS"]["Layers"] == [sha(rootfs)]
    assert rl.out("images", "-q", "-f", "dangling=true").split() == [second[7:19]]


def test_system_df(rl, tmp_path):
    path, _ = small_image(tmp_path)
    rl("load", "-i", path)
    lines = rl.out("system", "df").splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert re.split(r"\s{2,}", lines[1])[:3] == ["Images", "1", "0"]


def test_save_several_images_in_one_archive(rl, tmp_path):
    a, id_a = small_image(tmp_path, "demo/a:1", b"a")
    b, id_b = small_image(tmp_path, "demo/b:1", b"b")
    rl("load", "-i", a)
    rl("load", "-i", b)
    out = tmp_path / "both.tar"
    rl("save", "-o", str(out), "demo/a:1", "demo/b:1")
    manifest = json.load(tarfile.open(out).extractfile("manifest.json"))
    assert sorted(m["RepoTags"][0] for m in manifest) == ["demo/a:1", "demo/b:1"]
    from conftest import Rootless
    other = Rootless(str(tmp_path / "root2"))
    text = other.out("load", "-i", str(out))
    assert sorted(text.split("\n")[:2]) == ["Loaded image: demo/a:1", "Loaded image: demo/b:1"]


def test_save_failure_leaves_no_file(rl, tmp_path):
    out = tmp_path / "never.tar"
    proc = rl("save", "-o", str(out), "missing:1", check=False)
    assert proc.returncode == 125
    assert not out.exists() and [p for p in os.listdir(tmp_path) if p.startswith(".rootless-save")] == []


def test_system_reset_empties_a_root_with_read_only_layer_dirs(rl, tmp_path):
    layer = tar_bytes([{"name": "ro", "type": "dir", "mode": 0o500}, {"name": "ro/f", "data": b"x"}])
    path = tmp_path / "ro.tar"
    path.write_bytes(docker_archive([layer], tags=["ro/img:1"]))
    rl("load", "-i", str(path))
    proc = rl("system", "reset", check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 125 and "--force" in proc.stderr.decode()
    assert rl.out("images", "-q") != ""
    rl("system", "reset", "--force")
    assert rl.out("images", "-q") == ""
    assert sorted(os.listdir(rl.root)) in (["locks"], ["blobs", "layers", "locks", "tmp"])
