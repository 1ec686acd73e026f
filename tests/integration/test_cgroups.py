"""Limits on a host that cannot enforce them, for real (these machines: cgroups hybrid, the
v1 controllers used by the machine's management, nothing delegated): a limit flag fails
before anything is made, with one line naming what is missing and the remedy; runs
without limits are unchanged; ``info`` says why. (Where limits are enforced: tests/vm.)"""

import json
import os

import pytest

from conftest import loaded_root, need


@pytest.fixture(scope="module")
def crl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "cgroups")


def host_reason() -> str:
    """What this host lacks, found here by the test (not by the code under test): the
    words the refusal must contain. The suite runs on hosts without delegation."""
    with open("/proc/self/mounts") as f:
        kinds = {fields[1]: fields[2] for fields in (line.split() for line in f) if len(fields) > 2}
    if kinds.get("/sys/fs/cgroup") != "cgroup2":
        return "cgroup v1"
    with open("/proc/self/cgroup") as f:
        own = [line[3:].strip() for line in f if line.startswith("0::")][0]
    need(not os.access("/sys/fs/cgroup" + own, os.W_OK), "a host whose cgroup is not delegated to the test user")
    return "not delegated to you"


def one_line_125(proc) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == 125, err
    assert err.count("\n") == 1 and err.startswith("rootless: error: "), err
    return err


def nothing_made(crl):
    assert crl.out("ps", "-a", "-q") == ""
    assert os.listdir(os.path.join(crl.root, "containers")) == []


def test_a_limit_fails_fast_with_the_remedy(crl):
    reason = host_reason()
    crl("run", "--rm", "busybox", "true")  # the containers directory exists from here on
    for flags, named in ((["--memory", "50m"], "--memory needs the cgroup v2 memory controller"),
                         (["--pids-limit", "10", "--cpus", "0.5"], "--cpus and --pids-limit need the cgroup v2 cpu and pids"),
                         (["-m", "64m", "--memory-swap", "128m"], "--memory and --memory-swap need"),
                         (["--cgroup-parent", "batch"], "--cgroup-parent needs a cgroup v2 tree")):
        for verb in ("run", "create"):
            err = one_line_125(crl(verb, *flags, "busybox", "true", check=False))
            assert named in err and reason in err, err
            assert "ask root" in err or "boot with" in err, err  # the remedy
            nothing_made(crl)


def test_runs_without_limits_are_unchanged(crl):
    assert crl.out("run", "--rm", "busybox", "echo", "ok") == "ok\n"
    # "no limit" values ask for nothing: no cgroup is needed
    assert crl.out("run", "--rm", "--pids-limit", "-1", "busybox", "echo", "ok") == "ok\n"
    cid = crl.out("create", "--pids-limit", "0", "busybox", "true").strip()
    host_config = json.loads(crl.out("inspect", "--format", "{{json .HostConfig}}", cid))
    assert host_config["PidsLimit"] == 0 and host_config["Memory"] == 0 and host_config["NanoCpus"] == 0
    crl("rm", cid)


def test_bad_values_get_dockers_errors(crl):
    for flags, text in ((["--memory", "x"], 'invalid argument "x" for "-m, --memory" flag: invalid size'),
                        (["--memory", "1m"], "Minimum memory limit allowed is 6MB"),
                        (["--cpus", "abc"], "failed to parse abc as a rational number"),
                        (["--blkio-weight", "5"], "Range of blkio weight is from 10 to 1000"),
                        (["--cgroupns", "other"], "--cgroupns: invalid CGROUP mode"),
                        (["--cgroup-parent", "../up"], "invalid --cgroup-parent")):
        err = one_line_125(crl("run", "--rm", *flags, "busybox", "true", check=False))
        assert text in err, err


def test_cgroupns_host_shares_the_hosts(crl):
    mine = os.readlink("/proc/self/ns/cgroup")
    assert crl.out("run", "--rm", "--cgroupns", "host", "busybox", "readlink", "/proc/self/ns/cgroup").strip() == mine
    assert crl.out("run", "--rm", "--cgroupns", "private", "busybox", "readlink", "/proc/self/ns/cgroup").strip() != mine
    cid = crl.out("create", "--cgroupns", "host", "busybox", "true").strip()
    assert crl.out("inspect", "--format", "{{.HostConfig.CgroupnsMode}}", cid).strip() == "host"
    crl("rm", cid)


def test_info_names_the_missing_delegation(crl):
    reason = host_reason()
    out = crl.out("info")
    section = out[out.index(" Cgroups: "):].splitlines()
    assert section[0] == " Cgroups: none"
    why = [line for line in section if line.startswith("  Why: ")]
    remedy = [line for line in section if line.startswith("  Remedy: ")]
    assert why and reason in why[0] and remedy, section
    info = json.loads(crl.out("info", "--format", "{{json .}}"))
    assert info["CgroupDriver"] == "none" and info["MemoryLimit"] is False and info["PidsLimit"] is False
    assert info["Cgroups"]["Strategy"] == "none" and reason in info["Cgroups"]["Problem"]
