"""``stats``: what a running container uses, sampled from the host, and Docker's columns.

With the container's own cgroup (cgroups.v2) the kernel's figures are read, as dockerd
reads them on cgroup v2: ``cpu.stat`` usage_usec, ``memory.current`` less the inactive
file cache of ``memory.stat`` (dockerd's "usage"), ``memory.max`` as the limit (the host's
memory when unlimited), ``pids.current``, ``io.stat``'s rbytes and wbytes. Without one,
the same figures are summed over the processes of the container's pid namespace from
/proc (CPU time of those alive, their resident memory, their block I/O): processes that
ended take their CPU time with them. NET I/O is that of the container's own network
namespace (its interfaces but loopback), 0B / 0B on the host's network, as Docker.
"""

import os
import time
from typing import Dict, List, Optional, Tuple


class Sample:
    """One reading: cumulative CPU microseconds at ``when`` (monotonic seconds), memory in
    use and its limit, (rx, tx) and (read, written) bytes, the number of processes."""

    def __init__(self, when: float, cpu_usec: int = 0, mem: int = 0, limit: int = 0,
                 net: Tuple[int, int] = (0, 0), blk: Tuple[int, int] = (0, 0), pids: int = 0):
        self.when, self.cpu_usec, self.mem, self.limit = when, cpu_usec, mem, limit
        self.net, self.blk, self.pids = net, blk, pids


def sample(record: dict, mem_total: int, own_network: bool) -> Sample:
    """A reading of a running container (its record: ``pid``, ``cgroup``)."""
    when = time.monotonic()
    net = _net(record["pid"]) if own_network else (0, 0)
    path = record.get("cgroup")
    if path and os.path.isdir(path):
        return _from_cgroup(path, when, mem_total, net)
    return _from_proc(record["pid"], when, mem_total, net)


def columns(name: str, cid: str, before: Optional[Sample], now: Optional[Sample]) -> Dict[str, str]:
    """Docker's stats fields for one container (``now`` None: not running, all zero)."""
    from rootless.units import binary_size, human_size
    row = {"Container": cid, "ID": cid, "Name": name}
    if now is None:
        row.update(CPUPerc="0.00%", MemUsage="0B / 0B", MemPerc="0.00%", NetIO="0B / 0B",
                   BlockIO="0B / 0B", PIDs="0")
        return dict(sorted(row.items()))  # --format json: Docker's keys, in its order
    cpu = 0.0
    if before is not None and now.when > before.when:
        cpu = max(0, now.cpu_usec - before.cpu_usec) / 1e6 / (now.when - before.when) * 100
    row.update(CPUPerc="%.2f%%" % cpu,
               MemUsage="%s / %s" % (binary_size(now.mem), binary_size(now.limit)),
               MemPerc="%.2f%%" % (now.mem * 100.0 / now.limit if now.limit else 0.0),
               NetIO="%s / %s" % (human_size(now.net[0]), human_size(now.net[1])),
               BlockIO="%s / %s" % (human_size(now.blk[0]), human_size(now.blk[1])),
               PIDs=str(now.pids))
    return dict(sorted(row.items()))


def _from_cgroup(path: str, when: float, mem_total: int, net) -> Sample:
    from rootless.cgroups import v2
    cpu = v2.keyed(v2.read(path, "cpu.stat")).get("usage_usec", 0)
    current = _int(v2.read(path, "memory.current"))
    inactive = v2.keyed(v2.read(path, "memory.stat")).get("inactive_file", 0)
    mem = current - inactive if inactive < current else current
    limit_text = v2.read(path, "memory.max").strip()
    limit = int(limit_text) if limit_text.isdigit() else mem_total
    read = written = 0
    for line in v2.read(path, "io.stat").splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
        read += _int(fields.get("rbytes", "0"))
        written += _int(fields.get("wbytes", "0"))
    pids = _int(v2.read(path, "pids.current")) or len(v2.procs(path))
    return Sample(when, cpu, mem, min(limit, mem_total) if mem_total else limit, net, (read, written), pids)


def _from_proc(first: int, when: float, mem_total: int, net) -> Sample:
    from rootless.runtime.processes import container_pids
    pids = container_pids(first)
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    cpu = mem = read = written = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) * 1000000 // ticks  # utime + stime
            with open("/proc/%d/statm" % pid) as f:
                mem += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile
        io = _keyed_colon("/proc/%d/io" % pid)
        read += io.get("read_bytes", 0)
        written += io.get("write_bytes", 0)
    return Sample(when, cpu, mem, mem_total, net, (read, written), len(pids))


def _net(pid: int) -> Tuple[int, int]:
    """(received, sent) bytes of the network namespace of ``pid``, loopback left out."""
    rx = tx = 0
    try:
        with open("/proc/%d/net/dev" % pid) as f:
            lines = f.readlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, counters = line.partition(":")
        values = counters.split()
        if name.strip() != "lo" and len(values) >= 9:
            rx += int(values[0])
            tx += int(values[8])
    return rx, tx


def _keyed_colon(path: str) -> Dict[str, int]:
    values = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, number = line.partition(":")
                if number.strip().isdigit():
                    values[key] = int(number)
    except OSError:
        pass
    return values


def _int(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else 0


def own_network(spec: dict) -> bool:
    """Whether the container has a network namespace of its own (config.json)."""
    return any(n.get("type") == "network" for n in (spec.get("linux") or {}).get("namespaces") or [])


COLUMNS: List[Tuple[str, str]] = [("CONTAINER ID", "ID"), ("NAME", "Name"), ("CPU %", "CPUPerc"),
                                  ("MEM USAGE / LIMIT", "MemUsage"), ("MEM %", "MemPerc"),
                                  ("NET I/O", "NetIO"), ("BLOCK I/O", "BlockIO"), ("PIDS", "PIDs")]
