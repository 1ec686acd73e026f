"""``update`` on this machine: the restart policy of a container changes, limits are
refused as ``run`` refuses them (nothing changed), Docker's refusals and exit codes.
(Limits updated in a running container's cgroup: tests/vm.)"""

import json

import pytest

from conftest import loaded_root


@pytest.fixture(scope="module")
def url(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "update")


def refused(url, *args) -> str:
    proc = url("update", *args, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1 and err.startswith("rootless: error: "), err
    return err


def test_restart_policy(url):
    cid = url.out("create", "--name", "pol", "busybox", "true").strip()
    assert url.out("update", "--restart", "on-failure:3", "pol") == "pol\n"
    policy = json.loads(url.out("inspect", "--format", "{{json .HostConfig.RestartPolicy}}", cid))
    assert policy == {"Name": "on-failure", "MaximumRetryCount": 3}
    url("rm", cid)
    rm = url.out("run", "-d", "--rm", "busybox", "sleep", "100").strip()
    assert "Restart policy cannot be updated because AutoRemove is enabled" in refused(url, "--restart", "always", rm)
    url("rm", "-f", rm)


def test_limits_this_host_cannot_enforce(url):
    cid = url.out("create", "busybox", "true").strip()
    before = url.out("inspect", "--format", "{{json .HostConfig}}", cid)
    err = refused(url, "--memory", "50m", cid)
    assert "--memory needs the cgroup v2 memory controller" in err
    assert url.out("inspect", "--format", "{{json .HostConfig}}", cid) == before  # nothing changed
    url("rm", cid)
    running = url.out("run", "-d", "busybox", "sleep", "100").strip()
    assert "it runs without a cgroup of its own" in refused(url, "--pids-limit", "5", running)
    url("rm", "-f", running)


def test_usage(url):
    cid = url.out("create", "busybox", "true").strip()
    assert refused(url, cid) == "rootless: error: you must provide one or more flags when using this command\n"
    bad = url("update", "--memory", "x", cid, check=False)
    assert bad.returncode == 125 and 'invalid argument "x" for "-m, --memory" flag' in bad.stderr.decode()
    assert "No such container: nosuch" in refused(url, "--restart", "no", "nosuch")
    url("rm", cid)
