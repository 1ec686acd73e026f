"""What this host is, as ``info`` reports it: OS, CPUs, memory, the engine ID (its
cgroups: ``cgroups.detect``).

Everything is read from /proc, /etc/os-release and /sys without writing anything and
without forking: ``info`` must stay cheap.
"""

import os
from typing import Dict, List

# Docker's names for the file system under its root (its fsmagic table), where they differ
# from the kernel's.
BACKING_FS = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}


def backing_fs(kernel_name: str) -> str:
    return BACKING_FS.get(kernel_name, kernel_name)


def os_release(path: str = "/etc/os-release") -> Dict[str, str]:
    """The KEY=value pairs of os-release(5), quotes removed ({} when it cannot be read)."""
    values = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep and key and not key.startswith("#"):
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                        value = value[1:-1]
                    values[key] = value
    except OSError:
        pass
    return values


def mem_total(path: str = "/proc/meminfo") -> int:
    """Bytes of memory (MemTotal), 0 if unknown."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpus() -> int:
    """The CPUs this process may run on (Go's runtime.NumCPU, which Docker reports)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 0


def security_options(idmap: str) -> List[str]:
    """Docker's SecurityOptions for what a container here gets: the seccomp filter of
    single-uid mode, always rootless, a user namespace and a cgroup namespace."""
    options = ["name=seccomp,profile=builtin"] if idmap == "single-uid" else []
    return options + ["name=rootless", "name=userns", "name=cgroupns"]


def engine_id(root: str) -> str:
    """A stable ID for this storage root (Docker's engine ID: a UUID made once and kept in
    the root). Made when the root exists and first asked for; "" if it cannot be kept."""
    path = os.path.join(root, "engine-id")
    try:
        with open(path) as f:
            value = f.read().strip()
        if value:
            return value
    except OSError:
        pass
    if not os.path.isdir(root):
        return ""
    raw = bytearray(os.urandom(16))
    raw[6], raw[8] = (raw[6] & 0x0F) | 0x40, (raw[8] & 0x3F) | 0x80  # a version 4 UUID
    h = raw.hex()
    value = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])
    # Written whole under a temporary name, then linked into place: link(2) fails if the
    # name exists, so two first calls at once agree on the one that got there first.
    tmp = os.path.join(root, ".engine-id-%d-%s" % (os.getpid(), os.urandom(4).hex()))
    try:
        with open(tmp, "x") as f:
            f.write(value + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            with open(path) as f:
                value = f.read().strip()
        finally:
            os.unlink(tmp)
    except OSError:
        return ""
    return value


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
