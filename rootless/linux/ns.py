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
