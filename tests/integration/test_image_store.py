"""Read-only image stores (``--image-store DIR``, ``ROOTLESS_IMAGE_STORE``): another storage
root whose images containers use where they lie, never copied and never written.

Two stores: one this user prepares (``chmod 755`` before loading, as a project member
prepares one for the others), made read-only for the tests that use it, so any write into
it fails; and one root prepared (.ci/run: /var/tmp/rootless-shared-store), which to the
test user is another user's, its files owned by a uid the user namespace cannot map. As
the unprivileged user, with each rootfs driver.
"""

import json
import os
import stat
import subprocess

import pytest

from conftest import Rootless, need
from test_network import hidden_helpers_env

FOREIGN = os.environ.get("ROOTLESS_TEST_SHARED_STORE", "/var/tmp/rootless-shared-store")


class Consumer(Rootless):
    """rootless with its own root and the image store ``store``."""

    def __init__(self, root, store, env_path=None):
        super().__init__(root)
        self.base = self.base + ["--image-store", store]
        self.path = env_path

    def env(self):
        env = super().env()
        if self.path:
            env["PATH"] = self.path
        return env


def snapshot(root):
    """Every entry below ``root`` with its type, mode, size and mtime: what a write changes."""
    entries = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            entries[os.path.relpath(path, root)] = (stat.S_IFMT(st.st_mode), st.st_mode, st.st_size,
                                                    st.st_mtime_ns)
    return entries


def freeze(root):
    """Take every write bit off ``root`` and what is below it; returns what ``thaw`` needs."""
    paths = [root]
    for dirpath, dirs, files in os.walk(root):
        paths += [os.path.join(dirpath, name) for name in files + dirs]
    modes = {p: os.lstat(p).st_mode for p in paths if not os.path.islink(p)}
    for path in sorted(modes, key=len, reverse=True):  # what is in a directory first
        os.chmod(path, modes[path] & ~0o222)
    return modes


def thaw(modes):
    for path in sorted(modes, key=len):  # a directory before what is in it
        os.chmod(path, stat.S_IMODE(modes[path]))


@pytest.fixture(scope="module")
def own_store(tmp_path_factory, test_images):
    need(os.getuid() != 0, "containers must be run as an unprivileged user (bash .ci/run does)")
    root = tmp_path_factory.mktemp("shared") / "store"
    root.mkdir()
    root.chmod(0o755)  # opened to others before anything is added: what it adds stays readable
    prep = Rootless(str(root))
    prep("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    prep("tag", "busybox", "shared/box:1")
    yield prep
    prep("system", "reset", "--force", check=False)


def test_a_store_opened_to_others_keeps_what_it_adds_readable(own_store):
    layers = os.path.join(own_store.root, "layers")
    assert stat.S_IMODE(os.stat(own_store.root).st_mode) == 0o755
    for path in [os.path.join(own_store.root, "images.json"), layers] + \
            [os.path.join(layers, name) for name in os.listdir(layers)] + \
            [os.path.join(layers, name, "meta.json") for name in os.listdir(layers)]:
        mode = os.stat(path).st_mode
        assert mode & 0o044 == 0o044 and not mode & 0o022, (path, oct(mode))
        if stat.S_ISDIR(mode):
            assert mode & 0o011 == 0o011, (path, oct(mode))
    assert stat.S_IMODE(os.stat(os.path.join(own_store.root, "tmp")).st_mode) == 0o700  # work stays private


@pytest.mark.parametrize("driver", ["overlay", "fuse-overlayfs", "copy"])
def test_containers_use_a_read_only_store_in_place(own_store, tmp_path, driver):
    before = snapshot(own_store.root)
    modes = freeze(own_store.root)
    try:
        c = Consumer(str(tmp_path / "own"), own_store.root)
        names = c.out("images", "--format", "{{.Repository}}:{{.Tag}}").split()
        assert sorted(names) == ["busybox:latest", "shared/box:1"]
        shown = c.out("run", "--rm", "--storage-driver", driver, "shared/box:1", "sh", "-c",
                      "echo changed > /etc/motd && cat /etc/motd && head -n 1 /etc/passwd")
        assert shown == "changed\nroot:x:0:0:root:/root:/bin/sh\n"
        c("create", "--name", "keep", "--storage-driver", driver, "busybox", "sh", "-c", "echo > /etc/new")
        c("start", "-a", "keep")
        assert "A /etc/new" in c.out("diff", "keep").split("\n")
        record_dir = os.path.join(str(tmp_path / "own"), "containers")
        if driver != "copy":
            lower = c.out("inspect", "-f", "{{.GraphDriver.Data.LowerDir}}", "keep").strip()
            assert lower.startswith(os.path.join(own_store.root, "layers") + "/"), lower
        assert os.listdir(os.path.join(str(tmp_path / "own"), "layers")) == []  # nothing copied in
        assert os.listdir(record_dir)  # the container's own state is in its own root
        refused = c("rmi", "shared/box:1", check=False)
        assert refused.returncode == 125
        assert b"read-only image store %s" % own_store.root.encode() in refused.stderr
        c("rm", "keep")
    finally:
        thaw(modes)
    assert snapshot(own_store.root) == before


def test_info_names_the_store_and_how_its_layers_are_used(own_store, tmp_path):
    env = dict(os.environ, PYTHONPATH=Rootless("x").env()["PYTHONPATH"], ROOTLESS_IMAGE_STORE=own_store.root)
    base = Rootless(str(tmp_path / "own")).base
    info = json.loads(subprocess.run(base + ["info", "--format", "json"], env=env, capture_output=True,
                                     check=True, timeout=120).stdout)
    assert info["ImageStores"] == [{"Path": own_store.root, "Filesystem": info["StorageRootFilesystem"],
                                    "Images": 1, "Layers": "overlay",
                                    "Reason": info["ImageStores"][0]["Reason"]}]
    assert info["Images"] == 1
    text = subprocess.run(base + ["info"], env=env, capture_output=True, check=True, timeout=120).stdout.decode()
    assert " Image store (read-only): %s\n" % own_store.root in text
    assert "  Layers used by: overlay\n" in text
    ran = subprocess.run(base + ["run", "--rm", "shared/box:1", "true"], env=env, capture_output=True, timeout=120)
    assert ran.returncode == 0, ran.stderr


def test_tagging_an_image_of_the_store_lists_it_here(own_store, tmp_path):
    c = Consumer(str(tmp_path / "own"), own_store.root)
    c("tag", "shared/box:1", "mine:1")
    assert c.out("images", "--format", "{{.Repository}}:{{.Tag}}", "mine").split() == ["mine:1"]
    alone = Rootless(str(tmp_path / "own"))  # the tag is this root's, the parts the store's
    assert alone.out("images", "--format", "{{.Repository}}:{{.Tag}}").split() == ["mine:1"]
    assert c.out("run", "--rm", "mine:1", "echo", "ok") == "ok\n"
    assert c.out("rmi", "mine:1").startswith("Untagged: mine:1")
    assert sorted(c.out("images", "--format", "{{.Repository}}").split()) == ["busybox", "shared/box"]


def foreign_store():
    need(os.path.isdir(os.path.join(FOREIGN, "layers")),
         "no image store prepared by another user at %s (bash .ci/run prepares one as root)" % FOREIGN)
    need(os.stat(FOREIGN).st_uid != os.getuid(), "%s is this user's own" % FOREIGN)
    return FOREIGN


def test_another_users_store_is_shown_as_root_through_fuse_overlayfs(tmp_path):
    store = foreign_store()
    c = Consumer(str(tmp_path / "own"), store)
    info = json.loads(c.out("info", "--format", "json"))
    assert [(s["Path"], s["Layers"]) for s in info["ImageStores"]] == [(store, "fuse-overlayfs")]
    assert "squash_to_root" in info["ImageStores"][0]["Reason"]
    c("run", "-d", "--name", "box", "busybox", "sleep", "60")
    try:
        assert c.out("inspect", "-f", "{{.GraphDriver.Name}}", "box") == "fuse-overlayfs\n"
        shown = c.out("exec", "box", "sh", "-c", "stat -c '%u %g' /etc/passwd /bin && "
                      "echo x >> /etc/passwd && tail -n 1 /etc/passwd && id -u")
        assert shown == "0 0\n0 0\nx\n0\n"
    finally:
        c("rm", "-f", "box")
    assert os.listdir(str(tmp_path / "own" / "layers")) == []


def test_another_users_store_without_fuse_overlayfs_is_copied(tmp_path):
    store = foreign_store()
    c = Consumer(str(tmp_path / "own"), store, env_path=hidden_without_fuse(tmp_path))
    info = json.loads(c.out("info", "--format", "json"))
    assert [(s["Path"], s["Layers"]) for s in info["ImageStores"]] == [(store, "copy")]
    ran = c("run", "--rm", "--network", "none", "busybox", "sh", "-c",
            "echo x >> /etc/passwd && tail -n 1 /etc/passwd && stat -c %u /bin && ls -ld /root")
    out = ran.stdout.decode().split("\n")
    assert out[:2] == ["x", "0"] and out[2].startswith("drwx------ "), out  # /root: empty, its mode kept
    assert ran.stderr.decode().startswith("rootless: notice: 1 entries of the image store's layers only "
                                          "their owner may read are empty in the container (first: /root/)")


def hidden_without_fuse(tmp_path):
    path = hidden_helpers_env(tmp_path)
    fuse = os.path.join(path, "fuse-overlayfs")
    if os.path.lexists(fuse):
        os.unlink(fuse)
    return path


def test_a_missing_store_is_an_empty_one_and_a_bad_index_is_named(tmp_path, test_images):
    need(os.getuid() != 0, "containers must be run as an unprivileged user")
    missing = Consumer(str(tmp_path / "own"), str(tmp_path / "nowhere"))
    assert missing.out("images", "-q") == ""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "images.json").write_text('{"version": 99, "images": {}}')
    c = Consumer(str(tmp_path / "own"), str(bad))
    failed = c("run", "--rm", "busybox", "true", check=False)
    assert failed.returncode == 125
    assert b"image store %s" % str(bad).encode() in failed.stderr and b"version 99" in failed.stderr
