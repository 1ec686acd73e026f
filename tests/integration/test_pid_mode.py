"""``--pid container:NAME``: a container's processes in another's pid namespace, through
that container's user namespace (runtime.joins). As the unprivileged user."""

import os

import pytest

from conftest import loaded_root


@pytest.fixture(scope="module")
def prl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "pidmode")


def test_a_container_joins_anothers_processes_and_user_namespace(prl):
    prl("run", "-d", "--name", "holder", "busybox", "sleep", "300")
    try:
        shown = prl.out("run", "--rm", "--pid", "container:holder", "busybox", "sh", "-c",
                        "ps -o pid,args | sed 1d; readlink /proc/self/ns/user")
        lines = shown.split("\n")
        assert lines[0].split() == ["1", "sleep", "300"]  # the holder's first process is pid 1 here
        holder_pid = prl.out("inspect", "-f", "{{.State.Pid}}", "holder").strip()
        assert lines[-2] == os.readlink("/proc/%s/ns/user" % holder_pid)  # its user namespace
        assert os.readlink("/proc/%s/ns/user" % holder_pid) != os.readlink("/proc/self/ns/user")
        prl("run", "-d", "--name", "joiner", "--pid", "container:holder", "busybox", "sleep", "200")
        assert prl.out("inspect", "-f", "{{.HostConfig.PidMode}}", "joiner") == "container:holder\n"
        seen = prl.out("exec", "joiner", "ps", "-o", "args").split("\n")[1:-1]
        assert seen[:2] == ["sleep 300", "sleep 200"] and seen[2] == "ps -o args", seen  # exec joins them too
        prl("stop", "-t", "1", "holder")  # the end of its pid namespace ends the joiner
        assert prl.out("wait", "joiner") == "137\n"
        refused = prl("start", "joiner", check=False)
        assert refused.returncode == 125
        assert refused.stderr == b"rootless: error: cannot join PID namespace of a non running container: holder\n"
    finally:
        prl("rm", "-f", "holder", "joiner", check=False)


def test_bad_pid_modes_are_refused_before_anything_is_made(prl):
    for mode, words in (("host", b"--pid host is not supported"), ("bogus", b"invalid PID mode 'bogus'"),
                        ("container:nobody-here", b"No such container: nobody-here")):
        failed = prl("run", "--rm", "--pid", mode, "busybox", "true", check=False)
        assert failed.returncode == 125 and words in failed.stderr, (mode, failed.stderr)
    assert prl.out("ps", "-aq") == ""


def test_a_joiner_with_a_network_of_its_own_has_its_loopback_up(prl):
    prl("run", "-d", "--name", "holder2", "--network", "host", "busybox", "sleep", "300")
    try:
        shown = prl.out("run", "--rm", "--pid", "container:holder2", "--network", "none", "busybox",
                        "sh", "-c", "ip -o link show lo; ip -o link | wc -l")
        lo, count = shown.split("\n")[:2]
        assert ",UP," in lo or "<LOOPBACK,UP" in lo, lo
        assert count.strip() == "1"  # its own namespace: loopback only, not the host's links
    finally:
        prl("rm", "-f", "holder2", check=False)
