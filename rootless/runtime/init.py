"""P, the container's first process: from the keeper's namespaces to the command.

In order, and why: the parent-death signal first, then a handshake with the parent (it
answers only once it knows our pid, and not at all if it died before the signal could be
armed); a mount namespace of our own below the keeper's (pivot_root moves the root of
every process of a namespace, and a fuse-overlayfs process must keep the host's view);
the mount plan of ``runtime.mounts``; pivot_root; the terminal; then the user, bounding
set, capabilities, rlimits, no_new_privs and the id strategy's confinement, last before
exec because each one takes away a right the steps before it need.

Everything here is imported before the fork: after pivot_root neither the zipapp nor the
host's Python library is visible any more.
"""

import _socket  # sethostname; socket.py's enum classes cost every run ~2 ms
import errno
import os
import signal

from rootless.errors import CannotInvoke, CommandNotFound, RootlessError
from rootless.linux import caps, mount, ns, sync
from rootless.runtime import idmapping, mounts

# Signals an init passes on to the command, as Docker's sig-proxy does for the CLI.
FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM",
             "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGVTALRM", "SIGPROF", "SIGXCPU",
             "SIGXFSZ", "SIGPWR", "SIGSYS", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGSEGV")

RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
           "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
           "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
           "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}


def main(bundle, chan, rootfs: str, debug=None) -> int:
    caps.set_pdeathsig(signal.SIGKILL)
    sync.send(chan, "ready")
    reply = sync.recv(chan)
    if not reply or reply.get("op") != "go":
        return 1  # the parent is gone (or gave up): nobody would wait for us
    strategy = idmapping.get(bundle.idmap)
    ns.unshare(ns.CLONE_NEWNS)
    mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
    spec, proc = bundle.spec, bundle.process
    if spec.get("hostname") and "uts" in bundle.namespaces:
        _socket.sethostname(spec["hostname"])
    mounts.apply(mounts.plan(spec, rootfs, bundle.dir, strategy.devpts_gid), rootfs, debug)
    cwd = mounts.secure_join(rootfs, proc.get("cwd") or "/")
    if not os.path.isdir(cwd):
        os.makedirs(cwd, 0o755, exist_ok=True)
    mounts.pivot(rootfs)
    if (spec.get("root") or {}).get("readonly"):
        mount.remount_readonly("/")
    if bundle.tty:
        from rootless.linux import pty  # loaded before the fork (see preload)
        master, slave = pty.open_pty()
        sync.send(chan, "pty", fds=[master])
        os.close(master)
        pty.make_controlling_tty(slave)
    else:
        os.setsid()
    become_user(proc, strategy)
    try:
        os.chdir(proc.get("cwd") or "/")
    except OSError as e:
        raise RootlessError("cannot change to the working directory %s: %s" % (proc.get("cwd"), e.strerror))
    if bundle.init:
        return _init(lambda: execute(proc), chan)
    execute(proc)
    return 0  # not reached


def preload(bundle) -> None:
    """Import, before the fork, what this bundle's first process will need after pivot_root
    and a plain run does not (a pty, rlimits): each import costs every run a little."""
    if bundle.tty:
        from rootless.linux import pty  # noqa: F401
    if bundle.process.get("rlimits"):
        import resource  # noqa: F401


def become_user(proc: dict, strategy) -> None:
    """The process's user, capabilities, rlimits and confinement (also for ``exec``)."""
    user = proc.get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    wanted = proc.get("capabilities") or {}
    set_rlimits(proc.get("rlimits") or [])
    caps.drop_bounding(wanted.get("bounding", []))
    if strategy.can_setgroups:
        os.setgroups(list(user.get("additionalGids") or []))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if uid == 0:
        kept = wanted.get("effective", [])
        caps.set_caps(kept, kept, kept)
    strategy.confine(proc.get("noNewPrivileges", True))


def set_rlimits(limits) -> None:
    if not limits:
        return
    import resource  # loaded before the fork (see preload)
    for limit in limits:
        kind = RLIMITS.get(limit.get("type"))
        if kind is None:
            raise RootlessError("unknown rlimit %r in config.json" % limit.get("type"))
        try:
            resource.setrlimit(kind, (limit["soft"], limit["hard"]))
        except (ValueError, OSError) as e:
            raise RootlessError("cannot set %s to %s/%s: %s" % (limit["type"], limit["soft"], limit["hard"], e))


def execute(proc: dict) -> None:
    """Replace this process with the container's command, or report why not (126/127)."""
    args = proc["args"]
    env = dict(item.split("=", 1) for item in proc.get("env", []) if "=" in item)
    path = find_executable(args[0], env.get("PATH", ""))
    for sig in range(1, signal.NSIG):
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        os.execve(path, args, env)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise CommandNotFound('exec: "%s": %s' % (args[0], os.strerror(e.errno).lower()))
        raise CannotInvoke('exec: "%s": %s' % (args[0], os.strerror(e.errno or 0).lower()))


def find_executable(name: str, path: str) -> str:
    if "/" in name:
        return name
    for d in (path or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    for d in path.split(":"):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate):
            raise CannotInvoke('exec: "%s": permission denied' % name)
    raise CommandNotFound('exec: "%s": executable file not found in $PATH' % name)


def _init(start, chan) -> int:
    """``--init``: pid 1 that starts the command, passes signals on and reaps every zombie.
    The command's exec closes ``chan`` in it, and ``chan`` is closed here, so the parent's
    end of file still means "the command is running"."""
    child = os.fork()
    if child == 0:
        os.setpgid(0, 0)
        sync.child_main(start, chan)
    chan.close()
    for name in FORWARDED:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, lambda s, f: kill_quietly(child, s))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        if pid == child:
            return code_of(status)


def kill_quietly(pid: int, sig: int) -> None:
    """Signal ``pid`` if it is still there (the CLI, the keeper's parent and an init use it)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def code_of(status: int) -> int:
    """Docker's exit code for a wait status: the code, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
