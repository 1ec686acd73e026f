"""Configuration d of scripts/testbed: the test user's home on NFS (the VM exports a
directory to itself). With no configuration at all, the storage root moves to local disk
with its notice, and ``run --rm busybox true`` works."""

import os
import subprocess

from conftest import rootless_command


def cli(*args, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("ROOTLESS_ROOT", "XDG_DATA_HOME")}
    return subprocess.run(rootless_command() + list(args), capture_output=True, env=env, timeout=300, **kw)


def fs_type(path: str) -> str:
    best, kind = "", ""
    with open("/proc/self/mounts") as f:
        for line in f:
            point, fstype = line.split()[1:3]
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best, kind = point, fstype
    return kind


def test_the_home_is_on_nfs():
    assert fs_type(os.environ["HOME"]).startswith("nfs")


def test_the_default_root_moves_to_local_disk_and_run_works(test_images):
    loaded = cli("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    assert loaded.returncode == 0, loaded.stderr
    local = "/var/tmp/rootless-%d" % os.getuid()
    assert "notice" in loaded.stderr.decode() and local in loaded.stderr.decode()
    run = cli("run", "--rm", "busybox", "true")
    assert run.returncode == 0, run.stderr
    root = cli("info", "--format", "{{.DockerRootDir}}").stdout.decode().strip()
    assert root == local and not fs_type(root).startswith("nfs")
    assert os.path.isdir(os.path.join(local, "images")) or os.listdir(local)
    assert cli("run", "--rm", "busybox", "echo", "again").stdout == b"again\n"


def test_an_image_store_on_nfs_is_used_in_place(test_images, tmp_path):
    """A cluster's shared store on NFS (here the home): prepared with --root there, read by
    a run whose own root is on local disk; info says how the kernel lets its layers be
    used, and the container's lower layers are the store's own directories."""
    store = os.path.join(os.environ["HOME"], "shared-store")
    os.mkdir(store, 0o755)
    loaded = cli("--root", store, "load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    assert loaded.returncode == 0, loaded.stderr
    own = ["--root", str(tmp_path / "own"), "--image-store", store]
    info = cli(*own, "info", "--format", "{{range .ImageStores}}{{.Filesystem}} {{.Layers}}{{end}}")
    kind, rung = info.stdout.decode().split()
    assert kind.startswith("nfs") and rung in ("overlay", "fuse-overlayfs", "copy"), info.stdout
    made = cli(*own, "create", "--name", "from-nfs", "busybox", "sh", "-c", "echo changed > /etc/motd; cat /etc/motd")
    assert made.returncode == 0, made.stderr
    if rung != "copy":
        lower = cli(*own, "inspect", "-f", "{{.GraphDriver.Data.LowerDir}}", "from-nfs").stdout.decode()
        assert lower.startswith(os.path.join(store, "layers") + "/"), lower
    ran = cli(*own, "start", "-a", "from-nfs")
    assert ran.returncode == 0 and ran.stdout == b"changed\n", ran.stderr
    assert os.listdir(str(tmp_path / "own" / "layers")) == []
    cli(*own, "rm", "from-nfs")
    cli("--root", store, "system", "reset", "--force")
