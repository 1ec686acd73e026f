"""The resource flags of ``run``/``create``/``update``, read and checked as Docker does.

``parse`` turns the flags' texts into Docker's HostConfig resource fields (what ``inspect``
shows: ``Memory``, ``NanoCpus``, ``PidsLimit``...), with the docker CLI's flag errors
(``invalid argument "x" for "-m, --memory" flag: ...``) and then dockerd's checks of the
values (``Minimum memory limit allowed is 6MB``...), in dockerd's order. ``controllers``
(``asked``) names the cgroup v2 controllers the flags given need, and ``unified`` the cgroup v2 files
they become, with crun's conversions (``--cpu-shares`` to ``cpu.weight``, ``--blkio-weight``
to ``io.weight``). Pure, except that the CPUs and memory nodes a cpuset may name are read
from the host when one is asked for.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional

from rootless.errors import UsageError

MIN_MEMORY = 6 * 1024 * 1024  # dockerd's linuxMinMemory
MIN_SHARES, MAX_SHARES = 2, 262144
DEFAULT_PERIOD = 100000

# flag -> (HostConfig field, Docker's flag name as its errors spell it, kind)
FLAGS = {
    "memory": ("Memory", "-m, --memory", "bytes"),
    "memory_reservation": ("MemoryReservation", "--memory-reservation", "bytes"),
    "memory_swap": ("MemorySwap", "--memory-swap", "swap"),
    "cpus": ("NanoCpus", "--cpus", "cpus"),
    "cpu_shares": ("CpuShares", "-c, --cpu-shares", "int"),
    "cpu_period": ("CpuPeriod", "--cpu-period", "int"),
    "cpu_quota": ("CpuQuota", "--cpu-quota", "int"),
    "cpuset_cpus": ("CpusetCpus", "--cpuset-cpus", "text"),
    "cpuset_mems": ("CpusetMems", "--cpuset-mems", "text"),
    "pids_limit": ("PidsLimit", "--pids-limit", "int"),
    "blkio_weight": ("BlkioWeight", "--blkio-weight", "uint16"),
}
# HostConfig field -> the controller it needs
CONTROLLER_OF = {"Memory": "memory", "MemoryReservation": "memory", "MemorySwap": "memory",
                 "NanoCpus": "cpu", "CpuShares": "cpu", "CpuPeriod": "cpu", "CpuQuota": "cpu",
                 "CpusetCpus": "cpuset", "CpusetMems": "cpuset", "PidsLimit": "pids", "BlkioWeight": "io"}
# The flag a Docker user typed, by HostConfig field (for "--memory needs ...").
FLAG_OF = {field: "--" + name.replace("_", "-") for name, (field, _, _) in FLAGS.items()}


def parse(values: "Dict[str, Optional[str]]", cpus_online: int = 0, update: bool = False) -> dict:
    """The HostConfig fields set by ``values`` (flag name -> text, None when not given).
    ``update``: for ``update``, where --memory-swap may come without --memory."""
    fields = {}
    for name, text in values.items():
        if text is None:
            continue
        field, flag, kind = FLAGS[name]
        fields[field] = _value(text, flag, kind)
    _check(fields, cpus_online or _cpus_online(), update)
    return fields


def asked(values: "Dict[str, Optional[str]]", fields: dict) -> "Dict[str, List[str]]":
    """{controller: the flags given that need it}, for the error that names them: only the
    flags typed (not dockerd's defaults, such as --memory-swap's), and only those that ask
    for a limit (``--pids-limit -1`` does not)."""
    needed = {}
    for name, (field, _, _) in FLAGS.items():
        if values.get(name) is not None and _set(field, fields.get(field)):
            needed.setdefault(CONTROLLER_OF[field], []).append(FLAG_OF[field])
    return dict(sorted(needed.items()))


def _set(field: str, value) -> bool:
    """Whether a field asks for a limit (0, "" and -1 swap / pids mean none)."""
    if field in ("MemorySwap", "PidsLimit"):
        return value not in (0, -1) and value is not None
    return bool(value)


def unified(fields: dict) -> "Dict[str, str]":
    """The cgroup v2 files and values for ``fields`` (OCI's linux.resources.unified form)."""
    files = {}
    memory = fields.get("Memory") or 0
    if memory:
        files["memory.max"] = str(memory)
        swap = fields.get("MemorySwap")
        if swap == -1:
            files["memory.swap.max"] = "max"
        elif swap:
            files["memory.swap.max"] = str(swap - memory)  # Docker's figure is memory + swap
    if fields.get("MemoryReservation"):
        files["memory.low"] = str(fields["MemoryReservation"])
    quota, period = _cpu_max(fields)
    if quota:
        files["cpu.max"] = "%d %d" % (quota, period)
    if fields.get("CpuShares"):
        files["cpu.weight"] = str(shares_to_weight(fields["CpuShares"]))
    if fields.get("CpusetCpus"):
        files["cpuset.cpus"] = fields["CpusetCpus"]
    if fields.get("CpusetMems"):
        files["cpuset.mems"] = fields["CpusetMems"]
    if fields.get("PidsLimit") and fields["PidsLimit"] > 0:
        files["pids.max"] = str(fields["PidsLimit"])
    if fields.get("BlkioWeight"):
        files["io.weight"] = "default %d" % blkio_to_io_weight(fields["BlkioWeight"])
    return files


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2, 262144] -> cgroup v2 cpu.weight [1, 10000], as crun."""
    shares = min(max(shares, MIN_SHARES), MAX_SHARES)
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000], as crun."""
    return 1 + ((weight - 10) * 9999) // 990


def _cpu_max(fields: dict) -> "tuple[int, int]":
    """(quota, period) of cpu.max: --cpus is a quota of --cpus periods of 100 ms."""
    period = fields.get("CpuPeriod") or DEFAULT_PERIOD
    if fields.get("NanoCpus"):
        return fields["NanoCpus"] * period // 1000000000, period
    return fields.get("CpuQuota") or 0, period


def _value(text: str, flag: str, kind: str):
    from rootless.units import go_size
    try:
        if kind in ("bytes", "swap"):
            if kind == "swap" and text == "-1":
                return -1
            return go_size(text, binary=True)
        if kind == "cpus":
            return _nano_cpus(text)
        if kind in ("int", "uint16"):
            return _go_int(text, 16 if kind == "uint16" else 64, kind == "uint16")
        return text
    except ValueError as e:
        raise UsageError('invalid argument "%s" for "%s" flag: %s' % (text, flag, e))


def _go_int(text: str, bits: int, unsigned: bool) -> int:
    """strconv.ParseInt/ParseUint (base 0 as pflag's int flags: 0x.., 0o.., 0b.. too)."""
    func = "ParseUint" if unsigned else "ParseInt"
    body = text[1:] if text[:1] in "+-" and not unsigned else text
    try:
        if len(body) > 1 and body[0] == "0" and body.isdigit():
            value = int(body, 8)  # Go's base 0: a leading 0 is octal
        else:
            value = int(body, 0) if body and "_" not in body and body[:1] not in "+-" else None
    except ValueError:
        value = None
    if value is None:
        raise ValueError('strconv.%s: parsing "%s": invalid syntax' % (func, text))
    value = -value if text.startswith("-") else value
    low, high = (0, 2 ** bits - 1) if unsigned else (-2 ** (bits - 1), 2 ** (bits - 1) - 1)
    if not low <= value <= high:
        raise ValueError('strconv.%s: parsing "%s": value out of range' % (func, text))
    return value


def _nano_cpus(text: str) -> int:
    """opts.NanoCPUs: a rational number of CPUs, in billionths, exactly."""
    from fractions import Fraction
    try:
        cpus = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError("failed to parse %s as a rational number" % text)
    nano = cpus * 1000000000
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)


def _check(fields: dict, ncpu: int, update: bool) -> None:
    """dockerd's verifyPlatformContainerResources, in its order, with its messages."""
    memory, swap = fields.get("Memory", 0), fields.get("MemorySwap", 0)
    reservation = fields.get("MemoryReservation", 0)
    if memory and memory < MIN_MEMORY:
        raise UsageError("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap > 0 and swap < memory:
        raise UsageError("Minimum memoryswap limit should be larger than memory limit, see usage")
    if not memory and swap > 0 and not update:
        raise UsageError("You should always set the Memory limit when using Memoryswap limit, see usage")
    if reservation and reservation < MIN_MEMORY:
        raise UsageError("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise UsageError("Minimum memory limit can not be less than memory reservation limit, see usage")
    nano = fields.get("NanoCpus", 0)
    if nano and fields.get("CpuPeriod"):
        raise UsageError("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano and fields.get("CpuQuota"):
        raise UsageError("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano < 0 or nano > ncpu * 1000000000:
        raise UsageError("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available" % (ncpu, ncpu))
    if fields.get("CpuPeriod") and not 1000 <= fields["CpuPeriod"] <= 1000000:
        raise UsageError("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if fields.get("CpuQuota") and fields["CpuQuota"] < 1000:
        raise UsageError("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    for field, what, kind in (("CpusetCpus", "cpus", "cpu"), ("CpusetMems", "mems", "node")):
        if fields.get(field):
            _check_cpuset(fields[field], what, _online(kind))
    weight = fields.get("BlkioWeight", 0)
    if weight and not 10 <= weight <= 1000:
        raise UsageError("Range of blkio weight is from 10 to 1000")
    shares = fields.get("CpuShares", 0)
    if shares < 0:
        fields["CpuShares"] = MIN_SHARES  # dockerd raises it, with a warning in its log
    elif shares > MAX_SHARES:
        fields["CpuShares"] = MAX_SHARES
    if fields.get("PidsLimit") is not None and fields["PidsLimit"] <= 0:
        fields["PidsLimit"] = 0  # 0 and -1: unlimited (dockerd stores no limit)
    if memory > 0 and not swap and not update:
        fields["MemorySwap"] = memory * 2  # dockerd's default: as much swap as memory


def cgroup_parent(text: str) -> str:
    """``--cgroup-parent``: a path of cgroup names, taken under the delegated tree (a
    leading / too: nothing outside the tree is ever named)."""
    names = text.strip("/").split("/")
    if not text.strip("/") or any(n in ("", ".", "..") or n.startswith("cgroup.") for n in names):
        raise UsageError("invalid --cgroup-parent %r: give cgroup names separated by /, "
                         "without . or .. (it is taken under your delegated cgroup tree)" % text)
    return "/".join(names)


def parse_cpuset(text: str) -> "List[int]":
    """A cpuset list ("0-3,5") -> the numbers in it; ValueError when malformed."""
    numbers = set()
    for part in text.split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError("invalid format: %s" % text)
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError("invalid range format: %s" % part)
        numbers.update(range(first, last + 1))
    return sorted(numbers)


def _check_cpuset(text: str, what: str, available: str) -> None:
    try:
        asked = parse_cpuset(text)
    except ValueError as e:
        raise UsageError("Invalid value %s for cpuset %s: %s" % (text, what, e))
    have = set(parse_cpuset(available)) if available else set()
    if not set(asked) <= have:
        noun = "CPUs" if what == "cpus" else "memory nodes"
        raise UsageError("Requested %s are not available - requested %s, available: %s" % (noun, text, available))


def _online(kind: str) -> str:
    """The online CPUs or memory nodes, as the kernel lists them ("0-1")."""
    try:
        with open("/sys/devices/system/%s/online" % kind) as f:
            return f.read().strip()
    except OSError:
        return "0"


def _cpus_online() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
