"""``diff``, ``commit`` and ``top`` on real containers, as the unprivileged test users, on
every rootfs driver: what ``diff`` lists after a container added, changed and deleted
files and directories, what an image committed from it shows when run (also after
``save`` and ``load`` into another storage root), and which processes ``top`` lists.
"""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import Rootless, _has_subuid, loaded_root
from test_run import driver  # noqa: F401  (a pytest fixture)


@pytest.fixture(scope="module")
def crl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "commit", ("busybox-docker.tar", "debian-docker.tar"))


def _name(prefix, driver):
    return "%s-%s-%d" % (prefix, driver, os.getpid())


CHANGES = ("mkdir /new && echo data > /new/file && echo changed > /etc/group && rm /bin/ls"
           " && rm -r /usr/sbin")
CHANGED = ["C /bin", "D /bin/ls", "C /etc", "C /etc/group", "A /new", "A /new/file", "C /usr", "D /usr/sbin"]


def test_diff_lists_added_changed_and_deleted_entries(crl, driver):
    name = _name("diff", driver)
    crl("run", "--name", name, "--storage-driver", driver, "busybox", "sh", "-c", CHANGES)
    try:
        # Parents before children, a changed parent as C; the runtime's own mount points
        # (/etc/hosts and the rest, which busybox lacks) are not the container's changes.
        assert crl.out("diff", name).splitlines() == CHANGED
        assert crl.out("container", "diff", name).splitlines() == CHANGED
    finally:
        crl("rm", "-f", name)


def test_files_the_runtime_gave_their_owners_are_no_change(crl, driver):
    """With sub-ids the first start gives image files their owners (debian has some), which
    copies them up in the overlays: not the container's changes, and not in its layer."""
    name = _name("owners", driver)
    crl("run", "--name", name, "--storage-driver", driver, "debian", "true")
    try:
        assert crl.out("diff", name) == ""
        crl("start", "-a", name)
        assert crl.out("diff", name) == ""
    finally:
        crl("rm", "-f", name)
    crl("run", "--name", name, "--storage-driver", driver, "debian", "chmod", "0700", "/var/mail")
    image = _name("mail", driver)
    try:
        assert crl.out("diff", name).splitlines() == ["C /var", "C /var/mail"]
        crl("commit", name, image)
        shown = crl.out("run", "--rm", "--storage-driver", driver, image, "stat", "-c", "%a %g", "/var/mail")
        # (GNU chmod keeps a directory's set-gid bit); the mail group stays, where ids are kept
        assert shown == ("2700 8\n" if _has_subuid() else "2700 0\n")
    finally:
        crl("rm", "-f", name)
        crl("rmi", image, check=False)


def test_diff_of_a_replaced_directory_and_a_fresh_container(crl, driver):
    name = _name("opaque", driver)
    crl("create", "--name", name, "--storage-driver", driver, "busybox", "sh", "-c",
        "rm -r /usr && mkdir /usr && touch /usr/a")
    try:
        assert crl.out("diff", name) == ""
        crl("start", "-a", name)
        # The new /usr hides the image's (an opaque directory in the overlays).
        assert crl.out("diff", name).splitlines() == ["C /usr", "A /usr/a", "D /usr/bin", "D /usr/sbin"]
        image = _name("opaque-img", driver).lower()
        crl("commit", name, image)
        shown = crl.out("run", "--rm", "--storage-driver", driver, image, "ls", "-a", "/usr").split()
        assert shown == [".", "..", "a"]
        crl("rmi", image)
    finally:
        crl("rm", "-f", name)


def test_commit_makes_an_image_that_runs_with_the_changes(crl, driver):
    name = _name("commit", driver)
    image = "committed-%s:v1" % driver
    crl("run", "--name", name, "--storage-driver", driver, "busybox", "sh", "-c", CHANGES)
    try:
        proc = crl("commit", "-m", "the message", "-a", "A. Author <a@example.com>",
                   "-c", 'CMD ["echo","hi"]', "-c", "ENV A=1", name, image)
        image_id = proc.stdout.decode().strip()
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)
        assert crl.out("run", "--rm", "--storage-driver", driver, image) == "hi\n"
        shown = crl.out("run", "--rm", "--storage-driver", driver, image, "sh", "-c",
                        "cat /new/file /etc/group; echo A=$A; test -e /bin/ls || echo no-ls;"
                        " test -e /usr/sbin || echo no-sbin; test -e /usr/bin && echo usr-bin")
        assert shown.split("\n") == ["data", "changed", "A=1", "no-ls", "no-sbin", "usr-bin", ""]
        [inspected] = json.loads(crl.out("image", "inspect", image))
        assert inspected["Id"] == image_id
        assert inspected["Author"] == "A. Author <a@example.com>"
        assert inspected["Comment"] == "the message"
        assert inspected["Config"]["Cmd"] == ["echo", "hi"]
        assert "A=1" in inspected["Config"]["Env"]
        base = json.loads(crl.out("image", "inspect", "busybox"))[0]
        assert inspected["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
        assert len(inspected["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1
        history = crl.out("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", image).splitlines()
        assert history[0] == "sh -c %s|the message" % CHANGES
    finally:
        crl("rm", "-f", name)
        crl("rmi", image, check=False)


def test_commit_without_a_name_and_without_changes(crl):
    name = _name("plain", "any")
    crl("run", "--name", name, "busybox", "true")
    try:
        image_id = crl.out("commit", "--pause=false", name).strip()
        listed = crl.out("images", "--format", "{{.ID}} {{.Repository}} {{.Tag}}").splitlines()
        assert "%s <none> <none>" % image_id[7:19] in listed
        [inspected] = json.loads(crl.out("image", "inspect", image_id))
        base = json.loads(crl.out("image", "inspect", "busybox"))[0]
        # Nothing changed: no new layer, Docker's empty-layer history entry.
        assert inspected["RootFS"]["Layers"] == base["RootFS"]["Layers"]
        assert inspected["Config"]["Cmd"] == ["true"]
        crl("rmi", image_id)
    finally:
        crl("rm", "-f", name)


def test_commit_refuses_what_docker_refuses(crl):
    name = _name("refuse", "any")
    crl("create", "--name", name, "busybox", "true")
    try:
        proc = crl("commit", "-c", "RUN echo x", name, check=False)
        assert proc.returncode == 125
        assert proc.stderr.decode().strip() == "rootless: error: run is not a valid change command"
        assert crl("commit", "nosuchcontainer", check=False).returncode == 125
        assert "<none>" not in crl.out("images")
    finally:
        crl("rm", "-f", name)


def test_commit_save_load_elsewhere_and_run(crl, tmp_path, driver):
    name = _name("moved", driver)
    image = "moved-%s:latest" % driver
    crl("run", "--name", name, "--storage-driver", driver, "busybox", "sh", "-c", CHANGES)
    other = Rootless(str(tmp_path / "other-root"))
    try:
        crl("commit", name, image)
        archive = str(tmp_path / "image.tar")
        crl("save", "-o", archive, image)
        assert other.out("load", "-i", archive) == "Loaded image: %s\n" % image
        shown = other.out("run", "--rm", "--storage-driver", driver, image, "sh", "-c",
                          "cat /new/file; test -e /bin/ls || echo no-ls")
        assert shown == "data\nno-ls\n"
        assert other.out("history", "-q", image).split()[0] == crl.out("images", "-q", image).strip()
    finally:
        crl("rm", "-f", name)
        crl("rmi", image, check=False)
        other("system", "reset", "--force", check=False)


def test_commit_keeps_container_owners(crl, driver):
    """With sub-ids a file chowned to 1000 keeps uid 1000 in the new image; in single-uid
    mode every id is you, so the layer says 0 (the squash the mode makes at unpack too)."""
    name = _name("owner", driver)
    image = "owner-%s" % driver
    crl("run", "--name", name, "--storage-driver", driver, "busybox", "sh", "-c",
        "echo x > /owned && chown 1000:1000 /owned")
    try:
        crl("commit", name, image)
        shown = crl.out("run", "--rm", "--storage-driver", driver, image, "stat", "-c", "%u:%g", "/owned")
        assert shown == ("1000:1000\n" if _has_subuid() else "0:0\n")
    finally:
        crl("rm", "-f", name)
        crl("rmi", image, check=False)


def _running(crl, name, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if crl.out("ps", "--filter", "name=" + name, "-q"):
            return
        time.sleep(0.05)
    raise AssertionError("%s did not start" % name)


def test_top_lists_the_containers_processes_only(crl, driver):
    name = _name("top", driver)
    marker = "%d" % (5100000 + os.getpid() % 100000)
    host_sleep = subprocess.Popen(["sleep", marker + "1"])
    try:
        crl("run", "-d", "--name", name, "--storage-driver", driver, "busybox", "sleep", marker)
        _running(crl, name)
        text = crl.out("top", name)
        lines = text.splitlines()
        assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        assert lines[0].startswith("UID" + " " * 17 + "PID")  # Docker's columns: 20 wide
        assert [l.split(None, 7)[7] for l in lines[1:]] == ["sleep " + marker]
        assert str(host_sleep.pid) not in text
        # ps options go to the host's ps; only the container's rows are kept.
        custom = crl.out("container", "top", name, "-o", "pid,args").splitlines()
        assert custom[0].split() == ["PID", "COMMAND"]
        assert [l.split(None, 1)[1] for l in custom[1:]] == ["sleep " + marker]
        crl("rm", "-f", name)
        crl("create", "--name", name, "busybox", "true")
        proc = crl("top", name, check=False)
        assert proc.returncode == 1
        cid = crl.out("ps", "-a", "-q", "--no-trunc", "--filter", "name=" + name).strip()
        assert proc.stderr.decode().strip() == "rootless: error: container %s is not running" % cid
    finally:
        host_sleep.kill()
        host_sleep.wait()
        crl("rm", "-f", name, check=False)


def test_commit_of_a_running_container(crl):
    """Paused while its changes are read (the default), a container goes on afterwards."""
    name = _name("live", "any")
    crl("run", "-d", "--name", name, "busybox", "sh", "-c",
        "i=0; while :; do i=$((i+1)); echo $i > /c.tmp && mv /c.tmp /count; sleep 0.01; done")
    try:
        _running(crl, name)
        deadline = time.monotonic() + 20
        while "A /count" not in crl.out("diff", name).splitlines():
            assert time.monotonic() < deadline, "the container wrote no /count"
            time.sleep(0.05)
        image = crl.out("commit", name).strip()
        committed = int(crl.out("run", "--rm", image, "cat", "/count"))
        assert committed > 0
        assert crl.out("ps", "-q", "--filter", "name=" + name) != ""
        deadline = time.monotonic() + 20
        while _count(crl, name) <= committed:
            assert time.monotonic() < deadline, "the container did not go on after the commit"
            time.sleep(0.05)
        crl("rm", "-f", name)
        crl("rmi", image)
    finally:
        crl("rm", "-f", name, check=False)


def _count(crl, name) -> int:
    """The container's /count, read from a commit of it without pausing it."""
    image = crl.out("commit", "--pause=false", name).strip()
    try:
        return int(crl.out("run", "--rm", image, "cat", "/count") or 0)
    finally:
        crl("rmi", image)


class Limited(Rootless):
    """Rootless whose layers may unpack to one byte: every commit with changes fails at
    the store's guard, as one on a full disk fails at a write."""

    def env(self):
        env = super().env()
        env["ROOTLESS_MAX_LAYER_SIZE"] = "1"
        return env


def test_a_failed_commit_lists_nothing_and_leaves_no_work(crl):
    name = _name("failed", "any")
    crl("run", "--name", name, "busybox", "sh", "-c", "echo data > /file")
    before = crl.out("images", "-a", "-q")
    try:
        proc = Limited(crl.root)("commit", name, "never:listed", check=False)
        assert proc.returncode == 125
        [line] = proc.stderr.decode().splitlines()
        assert line.startswith("rootless: error: the container's changes unpacks to more than")
        assert crl.out("images", "-a", "-q") == before
        assert os.listdir(os.path.join(crl.root, "tmp")) == []
    finally:
        crl("rm", "-f", name)
