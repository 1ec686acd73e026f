"""The resource flags (cgroups.limits) and the choice of cgroup strategy (cgroups.detect),
both pure: what a host shows is given as text."""

import pytest

from rootless.cgroups import detect, limits
from rootless.errors import UsageError

NONE = {name: None for name in limits.FLAGS}


def parse(**given):
    return limits.parse(dict(NONE, **given), cpus_online=2)


def refused(**given) -> str:
    with pytest.raises(UsageError) as e:
        parse(**given)
    return str(e.value)


def test_values_become_dockers_host_config_fields():
    fields = parse(memory="50m", cpus="0.2", pids_limit="10", cpu_shares="512", blkio_weight="500",
                   memory_reservation="20m", cpuset_cpus="0-1", cpuset_mems="0")
    assert fields == {"Memory": 50 * 2 ** 20, "MemorySwap": 100 * 2 ** 20, "MemoryReservation": 20 * 2 ** 20,
                      "NanoCpus": 200000000, "PidsLimit": 10, "CpuShares": 512, "BlkioWeight": 500,
                      "CpusetCpus": "0-1", "CpusetMems": "0"}
    # dockerd's normalisations: unlimited pids is 0, shares are clamped, swap -1 kept
    assert parse(pids_limit="-1") == {"PidsLimit": 0}
    assert parse(cpu_shares="-5")["CpuShares"] == 2 and parse(cpu_shares="999999")["CpuShares"] == 262144
    assert parse(memory="10m", memory_swap="-1")["MemorySwap"] == -1
    assert parse(cpus="1/4")["NanoCpus"] == 250000000
    assert parse(cpu_shares="0x10")["CpuShares"] == 16 and parse(cpu_shares="010")["CpuShares"] == 8


def test_cgroup_v2_files_as_crun_writes_them():
    files = limits.unified(parse(memory="50m", cpus="0.2", pids_limit="10", cpu_shares="1024",
                                 blkio_weight="1000", memory_reservation="20m"))
    assert files == {"memory.max": str(50 * 2 ** 20), "memory.swap.max": str(50 * 2 ** 20),
                     "memory.low": str(20 * 2 ** 20), "cpu.max": "20000 100000", "cpu.weight": "39",
                     "pids.max": "10", "io.weight": "default 10000"}
    assert limits.unified(parse(memory="10m", memory_swap="-1"))["memory.swap.max"] == "max"
    assert limits.unified(parse(cpu_quota="50000", cpu_period="200000"))["cpu.max"] == "50000 200000"
    assert limits.unified(parse(pids_limit="-1")) == {}
    assert limits.shares_to_weight(2) == 1 and limits.shares_to_weight(262144) == 10000
    assert limits.blkio_to_io_weight(10) == 1


def test_flag_errors_are_the_docker_clis():
    assert refused(memory="x") == 'invalid argument "x" for "-m, --memory" flag: invalid size: \'x\''
    assert refused(memory_swap="12q") == 'invalid argument "12q" for "--memory-swap" flag: invalid suffix: \'q\''
    assert refused(cpus="abc") == 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number'
    assert refused(cpus="0.0000000001") == 'invalid argument "0.0000000001" for "--cpus" flag: value is too precise'
    assert refused(cpu_shares="1.5") == \
        'invalid argument "1.5" for "-c, --cpu-shares" flag: strconv.ParseInt: parsing "1.5": invalid syntax'
    assert refused(blkio_weight="70000") == \
        'invalid argument "70000" for "--blkio-weight" flag: strconv.ParseUint: parsing "70000": value out of range'


def test_value_errors_are_dockerds_in_its_order():
    assert refused(memory="1m") == "Minimum memory limit allowed is 6MB"
    assert refused(memory="10m", memory_swap="5m") == \
        "Minimum memoryswap limit should be larger than memory limit, see usage"
    assert refused(memory_swap="50m") == "You should always set the Memory limit when using Memoryswap limit, see usage"
    assert refused(memory_reservation="1m") == "Minimum memory reservation allowed is 6MB"
    assert refused(memory="10m", memory_reservation="20m") == \
        "Minimum memory limit can not be less than memory reservation limit, see usage"
    assert refused(cpus="0.5", cpu_period="100000") == "Conflicting options: Nano CPUs and CPU Period cannot both be set"
    assert refused(cpus="3") == "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    assert refused(cpu_quota="10") == "CPU cfs quota can not be less than 1ms (i.e. 1000)"
    assert refused(blkio_weight="5") == "Range of blkio weight is from 10 to 1000"
    assert refused(cpuset_cpus="0-99").startswith("Requested CPUs are not available - requested 0-99, available: ")
    assert refused(cpuset_cpus="a").startswith("Invalid value a for cpuset cpus")


def test_the_cli_and_the_parser_name_the_same_flags():
    from rootless.cli.containers import RESOURCE_FLAGS
    assert [dest for dest, _, _, _ in RESOURCE_FLAGS] == list(limits.FLAGS)
    assert [flags[-1] for _, flags, _, _ in RESOURCE_FLAGS] == [limits.FLAG_OF[f] for f, _, _ in limits.FLAGS.values()]


def test_only_the_flags_typed_are_named():
    values = dict(NONE, memory="50m", pids_limit="10", cpus="0.5")
    assert limits.asked(values, limits.parse(values, cpus_online=2)) == \
        {"cpu": ["--cpus"], "memory": ["--memory"], "pids": ["--pids-limit"]}
    values = dict(NONE, pids_limit="-1")
    assert limits.asked(values, limits.parse(values, cpus_online=2)) == {}


def test_cgroup_parent_stays_under_the_tree():
    assert limits.cgroup_parent("/batch/jobs/") == "batch/jobs"
    for bad in ("..", "a/../b", "/", "a//b", "cgroup.procs"):
        with pytest.raises(UsageError):
            limits.cgroup_parent(bad)


HYBRID = ("tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
          "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n")
UNIFIED = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n"


def test_hierarchy_and_own_cgroup_from_the_hosts_texts():
    assert detect.hierarchy(UNIFIED) == ("unified", "/sys/fs/cgroup")
    assert detect.hierarchy(HYBRID) == ("hybrid", "/sys/fs/cgroup/unified")
    assert detect.hierarchy("cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n") == ("legacy", "")
    assert detect.hierarchy("proc /proc proc rw 0 0\n") == ("none", "")
    assert detect.own_path("1:cpu:/x\n0::/user.slice/user-1000.slice/session-3.scope\n") == \
        "/user.slice/user-1000.slice/session-3.scope"
    assert detect.own_path("4:memory:/x\n") == ""


def test_strategy_and_what_to_tell_the_user():
    sess = "/user.slice/user-1000.slice/session-3.scope"
    found = detect.decide("unified", "/sys/fs/cgroup", sess, ["memory", "pids"], True, None, 1000, "ann")
    assert (found.strategy, found.parent, found.version) == ("cgroupfs", "/sys/fs/cgroup" + sess, "2")
    assert detect.refusal(found, {"pids": ["--pids-limit"]}) == ""
    assert "has only memory pids" in detect.refusal(found, {"cpu": ["--cpus"]})

    found = detect.decide("unified", "/sys/fs/cgroup", sess, ["cpu", "memory", "pids"], False,
                          ["memory", "pids"], 1000, "ann")
    assert found.strategy == "systemd"
    assert found.parent == "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service"
    text = detect.refusal(found, {"cpu": ["--cpus", "--cpu-shares"]})
    assert text.startswith("--cpus and --cpu-shares need the cgroup v2 cpu controller delegated to you")
    assert detect.DELEGATE_DROP_IN in text and "Delegate=" in text

    found = detect.decide("unified", "/sys/fs/cgroup", sess, ["memory"], False, None, 1000, "ann")
    assert found.strategy == "none"
    text = detect.refusal(found, {"memory": ["--memory"]})
    assert text.startswith("--memory needs the cgroup v2 memory controller delegated to you: your cgroup")
    assert "loginctl enable-linger ann" in text and "\n" not in text

    found = detect.decide("hybrid", "/sys/fs/cgroup/unified", "/", ["hugetlb"], False, None, 1000, "ann")
    assert found.strategy == "none" and found.version == "1"
    assert "cgroup v1" in found.problem and "systemd.unified_cgroup_hierarchy=1" in found.remedy
    found = detect.decide("legacy", "", "", None, False, None, 1000, "ann")
    assert found.problem == "this host has cgroup v1 only"
