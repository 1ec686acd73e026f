"""Configuration b of scripts/testbed: cgroup v2, but no user manager (user@UID.service
masked): nothing is delegated to the test user. A limit fails before anything is made,
naming the remedy; runs without limits are as ever; ``info`` says why."""

import json
import os

import pytest

from conftest import loaded_root


@pytest.fixture(scope="module")
def vrl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "nodelegation")


def test_the_host_is_what_the_configuration_says():
    with open("/proc/self/mounts") as f:
        assert any(line.split()[1:3] == ["/sys/fs/cgroup", "cgroup2"] for line in f)
    assert not os.path.exists("/run/user/%d/systemd/private" % os.getuid())


def test_a_limit_fails_fast_naming_the_remedy(vrl):
    for verb in ("run", "create"):
        proc = vrl(verb, "--memory", "50m", "busybox", "true", check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 125 and err.count("\n") == 1, err
        assert err.startswith("rootless: error: --memory needs the cgroup v2 memory controller delegated to you: "
                              "your cgroup /system.slice/"), err
        assert "no systemd user manager runs for uid %d" % os.getuid() in err
        assert "loginctl enable-linger %s" % os.environ["USER"] in err
    assert vrl.out("ps", "-a", "-q") == ""


def test_without_limits_nothing_changes(vrl):
    assert vrl.out("run", "--rm", "busybox", "echo", "ok") == "ok\n"
    assert vrl.out("run", "--rm", "--pids-limit", "-1", "busybox", "cat", "/proc/self/cgroup") == "0::/\n"


def test_info_names_the_missing_delegation(vrl):
    out = vrl.out("info")
    assert " Cgroups: none\n  Hierarchy: unified (cgroup v2 at /sys/fs/cgroup)\n" in out
    assert "  Remedy: ask root to run 'loginctl enable-linger %s'" % os.environ["USER"] in out
    info = json.loads(vrl.out("info", "--format", "{{json .}}"))
    assert info["CgroupVersion"] == "2" and info["CgroupDriver"] == "none" and not info["MemoryLimit"]
