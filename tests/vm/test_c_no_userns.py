"""Configuration c of scripts/testbed: user namespaces disabled
(user.max_user_namespaces=0 on the kernel command line). ``run`` fails at once with one
line naming the sysctl; ``info`` says so."""

import time

import pytest

from conftest import Rootless


@pytest.fixture
def vrl(tmp_path):
    return Rootless(str(tmp_path / "root"))


def test_the_host_is_what_the_configuration_says():
    with open("/proc/sys/user/max_user_namespaces") as f:
        assert f.read().strip() == "0"


def test_run_fails_at_once_naming_the_sysctl(vrl, test_images):
    vrl("load", "-i", test_images + "/busybox-docker.tar")
    began = time.monotonic()
    proc = vrl("run", "--rm", "busybox", "true", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and err.count("\n") == 1, err
    assert "user namespaces" in err and "sysctl user.max_user_namespaces=15000" in err, err
    assert time.monotonic() - began < 30
    assert vrl.out("ps", "-a", "-q") == ""


def test_info_says_so(vrl):
    out = vrl.out("info")
    assert " Id mapping: unavailable\n" in out
    assert "sysctl user.max_user_namespaces=15000" in out
