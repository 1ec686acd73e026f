"""Read-only image stores, the pure parts: which stores a command reads, how their indexes
merge with our own, and the rung a container takes when its layers lie in one."""

import json
import os

import pytest

from rootless import paths as paths_mod
from rootless.errors import Conflict, StoreError, Unsupported
from rootless.image.store import ImageRecord, Store
from rootless.storage import rootfs

A, B, C = ("sha256:" + c * 64 for c in "abc")


def test_stores_come_from_the_flag_else_the_variable_without_the_root_itself():
    env = {"ROOTLESS_IMAGE_STORE": "/s1::/s2:/s1:/r"}
    assert paths_mod.image_store_list("/r", env) == ("/s1", "/s2")
    assert paths_mod.image_store_list("/r", env, ["/f", "rel"]) == ("/f", os.path.abspath("rel"))
    assert paths_mod.image_store_list("/r", {}) == ()
    assert paths_mod.resolve("/r", env).image_stores == ("/s1", "/s2")


def write_index(root, images):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "images.json"), "w") as f:
        json.dump({"version": 1, "images": {r.id: r.to_json() for r in images}}, f)


def store_with(tmp_path, own, *shared):
    roots = []
    for i, images in enumerate(shared):
        root = str(tmp_path / ("shared%d" % i))
        write_index(root, images)
        roots.append(root)
    write_index(str(tmp_path / "own"), own)
    return Store(paths_mod.Paths(str(tmp_path / "own"), str(tmp_path / "run"), "from --root", tuple(roots))), roots


def test_our_names_win_and_each_stores_images_follow(tmp_path):
    store, roots = store_with(
        tmp_path,
        [ImageRecord(A, A, [], ["docker.io/x/app:1"])],
        [ImageRecord(B, B, [], ["docker.io/x/app:1", "docker.io/x/tool:1"]),
         ImageRecord(A, A, [], ["docker.io/x/app:old"])],
        [ImageRecord(C, C, [], ["docker.io/x/tool:1", "docker.io/x/other:1"])])
    assert store.lookup("x/app:1").id == A
    assert store.lookup("x/app:old").id == A  # a name the store adds to an image of ours
    assert store.lookup("x/tool:1").id == B  # the first store listing it
    assert store.lookup("x/other:1").id == C
    listed = {r.id: r.repo_tags for r in store.images()}
    assert listed == {A: ["docker.io/x/app:1", "docker.io/x/app:old"], B: ["docker.io/x/tool:1"],
                      C: ["docker.io/x/other:1"]}
    assert store.origin == {B: roots[0], C: roots[1]}
    assert [r.id for r in store.images(shared=False)] == [A]
    with open(os.path.join(str(tmp_path / "own"), "images.json")) as f:  # ours is unchanged
        assert json.load(f)["images"][A]["repo_tags"] == ["docker.io/x/app:1"]


def test_removing_a_stores_image_names_the_store_to_remove_it_from(tmp_path):
    store, roots = store_with(tmp_path, [], [ImageRecord(B, B, [], ["docker.io/x/tool:1"])])
    with pytest.raises(Conflict) as e:
        store.remove("x/tool:1")
    assert str(e.value) == ("image x/tool:1 is in the read-only image store %s; remove it there "
                            "(rootless --root %s rmi x/tool:1)" % (roots[0], roots[0]))


def test_a_store_of_another_index_version_is_named(tmp_path):
    write_index(str(tmp_path / "own"), [])
    bad = str(tmp_path / "bad")
    os.makedirs(bad)
    with open(os.path.join(bad, "images.json"), "w") as f:
        json.dump({"version": 7, "images": {}}, f)
    store = Store(paths_mod.Paths(str(tmp_path / "own"), str(tmp_path / "run"), "from --root", (bad,)))
    with pytest.raises(StoreError) as e:
        store.lookup("anything")
    assert "image store %s" % bad in str(e.value) and "version 7" in str(e.value)


def test_a_layer_is_found_here_first_then_in_the_stores(tmp_path):
    store, roots = store_with(tmp_path, [], [], [])
    for root in [str(tmp_path / "own")] + roots[1:]:
        os.makedirs(os.path.join(root, "layers", A[7:]))
        open(os.path.join(root, "layers", A[7:], "meta.json"), "w").close()
    os.makedirs(os.path.join(roots[0], "layers", B[7:]))  # incomplete there: no meta.json
    os.makedirs(os.path.join(roots[1], "layers", B[7:]))
    open(os.path.join(roots[1], "layers", B[7:], "meta.json"), "w").close()
    assert store.layer_store(A) == str(tmp_path / "own")
    assert store.layer_store(B) == roots[1]
    assert store.layer_dir(C) == os.path.join(str(tmp_path / "own"), "layers", C[7:])  # nowhere: ours


OVERLAY = {"choice": "overlay", "reason": "fine"}
FUSE = {"choice": "fuse-overlayfs", "reason": "owner's uid", "foreign": True}
COPY = {"choice": "copy", "reason": "no fuse"}


def test_a_stores_rung_lowers_the_containers_unless_forced():
    layers = [("/s/layers/x/diff", {})]
    assert rootfs.choose(None, "overlay", layers, (("/s", OVERLAY),)) == ("overlay", "probed")
    assert rootfs.choose(None, "overlay", layers, (("/s", FUSE),)) == \
        ("fuse-overlayfs", "image store /s: owner's uid")
    assert rootfs.choose(None, "fuse-overlayfs", layers, (("/s", FUSE), ("/t", COPY))) == \
        ("copy", "image store /t: no fuse")
    assert rootfs.choose(None, "copy", layers, (("/s", OVERLAY),)) == ("copy", "probed")
    assert rootfs.choose("overlay", "overlay", layers, (("/s", COPY),)) == ("overlay", "forced with --storage-driver")
    with pytest.raises(Unsupported) as e:
        rootfs.choose(None, "overlay", layers, (("/s", {"choice": "unusable", "reason": "closed"}),))
    assert str(e.value) == "image store /s: closed"
