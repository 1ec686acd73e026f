"""--ipc: a container's own IPC namespace (the default), the host's with its /dev/shm and
/dev/mqueue (``--ipc host``, what MPI ranks on one node share memory through), or none of
/dev/shm (``--ipc none``); inspect's HostConfig.IpcMode; Docker's refusals."""

import json
import os
import uuid

import pytest

from conftest import loaded_root


@pytest.fixture(scope="module")
def irl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "ipc")


def host_ipc() -> str:
    return os.readlink("/proc/self/ns/ipc")


def test_host_shares_the_hosts_namespace_and_dev_shm(irl):
    name = "rl-ipc-%s" % uuid.uuid4().hex[:12]
    path = os.path.join("/dev/shm", name)
    try:
        out = irl.out("run", "--rm", "--ipc", "host", "busybox", "sh", "-c",
                      "echo from-container > /dev/shm/%s; readlink /proc/self/ns/ipc; "
                      "test -d /dev/mqueue && echo mqueue || echo no-mqueue" % name)
        # the host's /dev/mqueue where it has one (this machine's has none)
        assert out.split() == [host_ipc(), "mqueue" if os.path.isdir("/dev/mqueue") else "no-mqueue"]
        with open(path) as f:
            assert f.read() == "from-container\n"
        # a second container sees what the first left in the host's /dev/shm
        assert irl.out("run", "--rm", "--ipc=host", "busybox", "cat", path) == "from-container\n"
    finally:
        if os.path.exists(path):
            os.unlink(path)


def test_the_default_is_a_namespace_and_a_dev_shm_of_its_own(irl):
    name = "rl-ipc-%s" % uuid.uuid4().hex[:12]
    out = irl.out("run", "--rm", "busybox", "sh", "-c",
                  "echo x > /dev/shm/%s; readlink /proc/self/ns/ipc; grep ' /dev/shm ' /proc/mounts" % name)
    ns, mount = out.split("\n", 1)
    assert ns.startswith("ipc:[") and ns != host_ipc()
    assert mount.split()[2] == "tmpfs"
    assert not os.path.exists(os.path.join("/dev/shm", name))
    assert irl.out("run", "--rm", "--ipc", "private", "busybox", "readlink", "/proc/self/ns/ipc").strip() != host_ipc()


def test_none_has_no_dev_shm(irl):
    proc = irl("run", "--rm", "--ipc", "none", "busybox", "test", "-e", "/dev/shm", check=False)
    assert proc.returncode == 1
    assert irl.out("run", "--rm", "--ipc", "none", "busybox", "readlink", "/proc/self/ns/ipc").strip() != host_ipc()


def test_inspect_shows_the_mode(irl):
    for flag, word in (([], "private"), (["--ipc", "host"], "host"), (["--ipc", "none"], "none"),
                       (["--ipc", "shareable"], "private")):
        cid = irl.out("create", *flag, "busybox", "true").strip()
        try:
            assert json.loads(irl.out("inspect", cid))[0]["HostConfig"]["IpcMode"] == word, flag
        finally:
            irl("rm", cid)


@pytest.mark.parametrize("flags,message", [
    (["--ipc", "container:other"], "--ipc container:NAME is not supported"),
    (["--ipc", "bogus"], "--ipc: invalid IPC mode 'bogus'"),
    (["--ipc", "host", "--sysctl", "kernel.shmmax=1000000"], "sysctl 'kernel.shmmax' is not allowed with --ipc host"),
])
def test_bad_modes_fail_before_anything_is_made(irl, flags, message):
    before = irl.out("ps", "-aq")
    proc = irl("run", "--rm", *flags, "busybox", "true", check=False)
    assert proc.returncode == 125
    assert message in proc.stderr.decode() and proc.stderr.decode().count("\n") == 1, proc.stderr
    assert irl.out("ps", "-aq") == before
