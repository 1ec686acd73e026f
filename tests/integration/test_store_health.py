"""A store that stays healthy: `system df`, `system prune` and `system check` after the
kill -9 of a `load` and of a `pull`, as the unprivileged user."""

import json
import os
import signal
import subprocess
import time

from conftest import Rootless, need
from proxies import ThrottlingProxy
from registries import make_registry  # noqa: F401  (a pytest fixture)
from test_registry import config_home  # noqa: F401  (a pytest fixture)

DEBIAN = "debian-docker.tar"


def rl_of(tmp_path):
    need(os.getuid() != 0, "containers must be run as an unprivileged user (bash .ci/run does)")
    return Rootless(str(tmp_path / "root"))


def entries(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def kill_when(proc, ready, timeout=60):
    """SIGKILL ``proc`` as soon as ``ready()`` holds (or fail at a deadline)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "it finished before the moment to kill it came"
        assert time.monotonic() < deadline, "the moment to kill it never came"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_check_and_repair_after_a_killed_load(tmp_path, test_images):
    rl = rl_of(tmp_path)
    rl("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    assert rl.out("system", "check").endswith("no problems found in %s\n" % rl.root)
    tmp = os.path.join(rl.root, "tmp")
    proc = rl.popen("load", "-i", os.path.join(test_images, DEBIAN), stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    # Killed while it unpacks: its work is in tmp/ (a directory and its lock).
    kill_when(proc, lambda: any(not n.endswith(".lock") for n in entries(tmp)))
    assert "debian" not in rl.out("images")  # nothing half-written is listed
    check = rl("system", "check", check=False)
    out = check.stdout.decode()
    assert check.returncode == 1 and "was left by a command that ended" in out, out
    repaired = rl.out("system", "check", "--repair")
    assert "abandoned work dir" in repaired and repaired.endswith("no problems found in %s\n" % rl.root)
    assert [n for n in entries(tmp) if not n.endswith(".lock")] == []
    # The images that were there are whole, and the load works again.
    assert rl.out("run", "--rm", "busybox", "echo", "ok") == "ok\n"
    rl("load", "-i", os.path.join(test_images, DEBIAN))
    assert rl.out("system", "check").endswith("no problems found in %s\n" % rl.root)


def test_check_finds_damage_and_repair_keeps_what_is_used(tmp_path, test_images):
    rl = rl_of(tmp_path)
    rl("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    layers = os.path.join(rl.root, "layers")
    [used] = entries(layers)
    orphan = os.path.join(layers, "0" * 64)
    os.makedirs(os.path.join(orphan, "diff"))
    blobs = os.path.join(rl.root, "blobs", "sha256")
    config = json.loads(rl.out("image", "inspect", "busybox"))[0]["Id"][7:]
    os.chmod(os.path.join(blobs, config), 0o600)  # blobs are kept read-only
    with open(os.path.join(blobs, config), "ab") as f:
        f.write(b" ")  # the config blob no longer matches its digest
    out = rl("system", "check", check=False).stdout.decode()
    assert "layer %s is used by no image" % orphan in out
    assert "blob %s does not match its digest" % os.path.join(blobs, config) in out
    assert out.endswith("2 problem(s) found in %s\n" % rl.root)
    rl("system", "check", "--repair", check=False)
    assert entries(layers) == [used]  # the orphan went; the image's layer stayed
    out = rl("system", "check", check=False).stdout.decode()
    assert "does not match its digest" in out and "used by no image" not in out  # reported, not "repaired"


def test_prune_after_a_killed_pull(tmp_path, test_images, make_registry, config_home):  # noqa: F811
    rl = rl_of(tmp_path)
    reg = make_registry("http")
    reg.push_archive(os.path.join(test_images, DEBIAN), "debian:latest")
    proxy = ThrottlingProxy(reg.port, rate=8 << 20)
    host = "127.0.0.1:%d" % proxy.port
    (config_home / "registries.json").write_text(json.dumps({"insecure-registries": [host], "retries": 1}))
    downloads = os.path.join(rl.root, "downloads")
    try:
        proc = rl.popen("pull", host + "/debian", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kill_when(proc, lambda: any(n.endswith(".partial") and os.path.getsize(os.path.join(downloads, n)) > (1 << 20)
                                    for n in entries(downloads) if os.path.exists(os.path.join(downloads, n))))
    finally:
        proxy.close()
    assert rl.out("images", "-q") == ""
    df = rl.out("system", "df")
    assert "Partial Downloads" in df, df
    out = rl("system", "check", check=False).stdout.decode()
    assert "partial download(s) in %s" % downloads in out  # a note: the next pull resumes them
    pruned = rl.out("system", "prune", "-f")
    assert pruned.startswith("Total reclaimed space: ") and not pruned.startswith("Total reclaimed space: 0B"), pruned
    assert entries(downloads) == []
    assert "Partial Downloads" not in rl.out("system", "df")
    assert rl.out("system", "check").endswith("no problems found in %s\n" % rl.root)


def test_system_prune_removes_what_is_unused(tmp_path, test_images):
    rl = rl_of(tmp_path)
    rl("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    stopped = rl.out("create", "-v", "/anon", "busybox", "true").strip()
    kept = rl.out("create", "-v", "named:/n", "busybox", "true").strip()
    rl("rm", kept)  # the named volume stays, unused
    out = rl.out("system", "prune", "-f", "--volumes")
    assert "Deleted Containers:\n%s\n" % stopped in out and "Deleted Volumes:\n" in out
    assert rl.out("ps", "-a", "-q") == "" and rl.out("volume", "ls", "-q") == "named\n"  # named ones stay
    assert rl.out("images", "-q") != ""  # tagged images stay without -a
    rl("system", "prune", "-f", "-a")
    assert rl.out("images", "-q") == ""


SMALL = "/var/tmp/rootless-small"  # a 24 MiB tmpfs that .ci/run mounts for the users


def test_a_full_disk_during_load_is_one_clear_error_and_lists_nothing(test_images):
    need(os.path.ismount(SMALL) and os.access(SMALL, os.W_OK),
         "a small tmpfs the test users can write at %s (bash .ci/run mounts it)" % SMALL)
    import uuid
    rl = Rootless(os.path.join(SMALL, "%s-%s" % (os.getuid(), uuid.uuid4().hex[:8])))
    try:
        proc = rl("load", "-i", os.path.join(test_images, DEBIAN), check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 125 and err.count("\n") == 1, err
        assert err.startswith("rootless: error: no space left on device under %s while loading " % rl.root), err
        import re
        size = re.search(r"\(([0-9.]+)([kMG]?B) free there, about ([0-9.]+)MB needed\)", err)
        assert size and float(size.group(3)) * 1e6 >= os.path.getsize(os.path.join(test_images, DEBIAN)) * 0.99, err
        assert "--root" in err, err
        assert rl.out("images", "-q") == ""
        assert rl.out("system", "check").endswith("no problems found in %s\n" % rl.root)
    finally:
        rl("system", "reset", "--force", check=False)
        import shutil
        shutil.rmtree(rl.root, ignore_errors=True)


def test_df_counts_containers_and_volumes(tmp_path, test_images):
    rl = rl_of(tmp_path)
    rl("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    cid = rl.out("create", "--name", "sized", "-v", "dfvol:/d", "busybox", "sh", "-c",
                 "dd if=/dev/zero of=/big bs=64k count=16 2>/dev/null; echo v > /d/f").strip()
    rl("start", "-a", cid)
    rows = {line.split()[0]: line.split()[1:] for line in
            rl.out("system", "df", "--format", "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}").splitlines()}
    assert rows["Containers"][:2] == ["1", "0"] and rows["Containers"][2].endswith("MB"), rows  # its 1 MiB
    assert rows["Local"][:3] == ["Volumes", "1", "1"], rows
    verbose = rl.out("system", "df", "-v")
    for heading in ("Images space usage:", "Containers space usage:", "Local Volumes space usage:",
                    "Build cache usage: 0B"):
        assert heading in verbose
    assert "sized" in verbose and "dfvol" in verbose and "busybox" in verbose.split("Containers")[0]
    rl("rm", "-v", cid)
    rl("volume", "rm", "dfvol")
