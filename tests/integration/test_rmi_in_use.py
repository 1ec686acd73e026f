"""rmi and image prune against images that real containers use (as the unprivileged user).

Docker's rules (moby daemon/images/image_delete.go): the last name of an image a container
uses is removed only with --force, and then the image stays (as <none>) for the container;
an ID a running container uses cannot be removed even with --force; one a stopped container
uses goes with --force, and the container keeps its layers and still starts.
"""

import json
import os
import subprocess
import time

import pytest

from conftest import need
from imagetools import config_for, docker_archive, tar_bytes

BUSYBOX = "busybox"


@pytest.fixture
def brl(rl, test_images):
    """A private storage root with busybox loaded."""
    need(os.getuid() != 0, "containers must be run as an unprivileged user (bash .ci/run does)")
    rl("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    yield rl
    for cid in rl.out("ps", "-a", "-q", "--no-trunc", check=False).split():
        rl("rm", "-f", cid, check=False)
    rl("system", "reset", "--force", check=False)


def image_id(rl, name=BUSYBOX) -> str:
    return json.loads(rl.out("image", "inspect", name))[0]["Id"]


def images(rl):
    return rl.out("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").splitlines()


def layer_dirs(rl):
    return sorted(os.listdir(os.path.join(rl.root, "layers")))


def error(proc) -> str:
    assert proc.returncode == 125, (proc.returncode, proc.stderr)
    return proc.stderr.decode()


def tiny_archive(tmp_path) -> str:
    """Another image, whose load collects garbage in the store on its way."""
    layer = tar_bytes([{"name": "other", "data": b"x"}])
    path = tmp_path / "other.tar"
    path.write_bytes(docker_archive([layer], tags=["demo/other:1"], config=config_for([layer])))
    return str(path)


def test_the_last_name_of_an_image_a_stopped_container_uses(brl):
    iid = image_id(brl)
    cid = brl.out("create", "--name", "keeper", BUSYBOX, "echo", "still here").strip()
    msg = error(brl("rmi", BUSYBOX, check=False))
    assert ('conflict: unable to remove repository reference "busybox" (must force) - container %s '
            "is using its referenced image %s" % (cid[:12], iid[7:19])) in msg
    assert images(brl) == ["busybox:latest " + iid]

    assert brl.out("rmi", "-f", BUSYBOX).splitlines() == ["Untagged: busybox:latest"]
    assert images(brl) == ["<none>:<none> " + iid]
    assert brl.out("start", "-a", "keeper") == "still here\n"


def test_prune_spares_what_containers_use_until_they_are_removed(brl, tmp_path):
    iid = image_id(brl)
    brl("create", "--name", "keeper", BUSYBOX, "true")
    brl("rmi", "-f", BUSYBOX)
    layers = layer_dirs(brl)
    for args in (["image", "prune", "-f"], ["image", "prune", "-a", "-f"]):
        out = brl.out(*args)
        assert "deleted:" not in out, out
        assert images(brl) == ["<none>:<none> " + iid]
    assert brl.out("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}").splitlines()[0] == "Images 1 1"
    assert layer_dirs(brl) == layers

    brl("rm", "keeper")
    out = brl.out("image", "prune", "-f")
    assert "deleted: " + iid in out, out
    assert images(brl) == [] and layer_dirs(brl) == []


def test_an_id_a_stopped_container_uses(brl, tmp_path):
    iid = image_id(brl)
    cid = brl.out("create", "--name", "keeper", BUSYBOX, "echo", "still here").strip()
    for name in (iid, iid[7:19]):
        msg = error(brl("rmi", name, check=False))
        assert ("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s"
                % (iid[7:19], cid[:12])) in msg
    layers = layer_dirs(brl)

    assert brl.out("rmi", "-f", iid[7:19]).splitlines() == ["Untagged: busybox:latest", "Deleted: " + iid]
    assert images(brl) == []
    brl("load", "-i", tiny_archive(tmp_path))  # a load collects garbage first
    brl("image", "prune", "-a", "-f")          # and so does prune
    assert set(layers) <= set(layer_dirs(brl))
    assert brl.out("start", "-a", "keeper") == "still here\n"

    brl("rm", "keeper")
    brl("image", "prune", "-f")
    assert not set(layers) & set(layer_dirs(brl)), "the deleted image's layers outlived its last container"


def wait_running(rl, name, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        rows = rl.out("ps", "--format", "{{.Names}} {{.State}}").split("\n")
        if name + " running" in rows:
            return
        time.sleep(0.1)
    raise AssertionError("container %s never showed as running" % name)


def test_an_image_a_running_container_uses(brl):
    iid = image_id(brl)
    proc = brl.popen("run", "--name", "runner", BUSYBOX, "sleep", "300",
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_running(brl, "runner", proc)
        cid = brl.out("ps", "-q", "--no-trunc").strip()
        msg = error(brl("rmi", BUSYBOX, check=False))
        assert ('conflict: unable to remove repository reference "busybox" (must force) - container %s'
                % cid[:12]) in msg
        for args in ([iid[7:19]], ["-f", iid[7:19]], ["-f", iid]):
            msg = error(brl("rmi", *args, check=False))
            assert ("conflict: unable to delete %s (cannot be forced) - image is being used by running "
                    "container %s" % (iid[7:19], cid[:12])) in msg
            assert images(brl) == ["busybox:latest " + iid]

        assert brl.out("rmi", "-f", BUSYBOX).splitlines() == ["Untagged: busybox:latest"]
        assert images(brl) == ["<none>:<none> " + iid]
        brl("image", "prune", "-a", "-f")
        assert images(brl) == ["<none>:<none> " + iid]
        msg = error(brl("rmi", "-f", iid, check=False))
        assert "(cannot be forced) - image is being used by running container" in msg
    finally:
        brl("rm", "-f", "runner", check=False)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert brl.out("image", "prune", "-f").startswith("Deleted Images:\ndeleted: " + iid)


def test_rmi_of_several_removes_the_others(brl, tmp_path):
    iid = image_id(brl)
    brl("load", "-i", tiny_archive(tmp_path))
    cid = brl.out("create", BUSYBOX, "true").strip()
    proc = brl("rmi", BUSYBOX, "demo/other:1", check=False)
    assert "container %s is using its referenced image" % cid[:12] in error(proc)
    assert proc.stdout.decode().splitlines()[0] == "Untagged: demo/other:1"
    assert images(brl) == ["busybox:latest " + iid]

    # As Docker's CLI: under --force a missing image is reported but fails nothing.
    proc = brl("rmi", "-f", "nope:1", BUSYBOX, check=False)
    assert proc.returncode == 0 and "no such image: nope:1" in proc.stderr.decode()
    assert proc.stdout.decode().splitlines() == ["Untagged: busybox:latest"]
    assert error(brl("rmi", "nope:1", check=False))
