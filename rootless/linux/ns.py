"""Namespaces: unshare(2), setns(2), the clone flags, and a fork whose child is our sibling."""

import os

from rootless.linux.libc import call, libc, check

CLONE_NEWNS = 0x00020000
CLONE_PARENT = 0x00008000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# The OCI runtime spec's linux.namespaces types.
FLAGS = {"user": CLONE_NEWUSER, "mount": CLONE_NEWNS, "pid": CLONE_NEWPID, "uts": CLONE_NEWUTS,
         "ipc": CLONE_NEWIPC, "network": CLONE_NEWNET, "cgroup": CLONE_NEWCGROUP}

_SYS_CLONE = {"x86_64": 56, "aarch64": 220, "ppc64le": 120, "riscv64": 220}
SIGCHLD = 17


def unshare(flags: int) -> None:
    call("unshare", flags)


def setns(fd: int, flags: int = 0) -> None:
    call("setns", fd, flags)


# /proc/PID/ns names of the OCI types, in the order a process joins them: the user
# namespace first (it gives the capabilities every other setns needs, as runc and crun
# order it), the mount namespace last of those that change what paths mean.
PROC_NAMES = (("user", "user"), ("cgroup", "cgroup"), ("ipc", "ipc"), ("uts", "uts"),
              ("network", "net"), ("pid", "pid"), ("mount", "mnt"))


def open_namespaces(pid: int, kinds) -> "list[tuple[int, int]]":
    """(fd, flag) of ``pid``'s namespaces of these OCI types, in joining order, opened
    before any is joined (after joining a user or mount namespace /proc may not be the
    host's any more). A namespace ``pid`` shares with us is left out: setns to one's own
    user namespace fails (EINVAL). Closes what it opened if one cannot be opened."""
    wanted = set(kinds)
    opened = []
    try:
        for kind, name in PROC_NAMES:
            if kind not in wanted:
                continue
            path = "/proc/%d/ns/%s" % (pid, name)
            if os.stat(path).st_ino == os.stat("/proc/self/ns/%s" % name).st_ino:
                continue
            opened.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), FLAGS[kind]))
    except BaseException:
        for fd, _ in opened:
            os.close(fd)
        raise
    return opened


def join(opened) -> None:
    """setns into each of ``open_namespaces``' results, in order, closing them. A pid
    namespace applies to the children forked after this, not to the caller. The caller
    must be single-threaded (a user namespace refuses a multi-threaded process)."""
    try:
        for fd, flag in opened:
            setns(fd, flag)
    finally:
        for fd, _ in opened:
            os.close(fd)


def fork_sibling() -> int:
    """fork(), except that the child's parent is our parent (clone with CLONE_PARENT and
    no new stack, which is what fork is to the kernel). 0 in the child, its pid here.

    This is how a container's first process becomes the child of the process that will
    wait for it (the CLI, or the monitor), while the process that set up its namespaces
    exits. The child skips the C library's and Python's after-fork hooks, so only a
    single-threaded process may call this, and the child must start no thread: it runs
    its straight-line set-up, then execs or exits.
    """
    import ctypes
    number = _SYS_CLONE.get(os.uname().machine)
    if number is None:
        raise OSError(0, "clone(CLONE_PARENT) is not wired for %s" % os.uname().machine)
    fn = libc().syscall
    fn.restype = ctypes.c_long
    return check(fn(ctypes.c_long(number), ctypes.c_ulong(CLONE_PARENT | SIGCHLD),
                    ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)), "clone")


def loopback_up() -> None:
    """Bring ``lo`` up in a new network namespace (SIOCSIFFLAGS |= IFF_UP | IFF_RUNNING).
    The socket comes from libc, not the socket module: importing that (with enum) costs
    ~7 ms, on the path of every run with a network of its own."""
    import fcntl
    import struct
    af_inet, sock_dgram, sock_cloexec = 2, 2, 0o2000000
    siocgifflags, siocsifflags, up = 0x8913, 0x8914, 0x1 | 0x40
    fd = call("socket", af_inet, sock_dgram | sock_cloexec, 0)
    try:
        request = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(fd, siocgifflags, request))[1]
        fcntl.ioctl(fd, siocsifflags, struct.pack("16sh14x", b"lo", flags | up))
    finally:
        os.close(fd)
