"""The last steps of a process that enters a container, the same for its first process
(``runtime.init``) and for each ``exec`` into it (``runtime.exec``): the terminal, the user,
capabilities, rlimits and the id strategy's confinement, the working directory, then exec
with Docker's 126/127; and the parent's view of it (``Started``, ``code_of``).

A module of its own so that ``exec`` imports only this, not the first process's mount
plan. Everything it needs after the container's root became ``/`` is imported with it
(``preload`` adds what only some processes need).
"""

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Optional

from rootless.errors import CannotInvoke, CommandNotFound, RootlessError
from rootless.linux import caps, signals, sync

# Signals an init passes on to the command, as Docker's sig-proxy does for the CLI.
FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM",
             "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGVTALRM", "SIGPROF", "SIGXCPU",
             "SIGXFSZ", "SIGPWR", "SIGSYS", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGSEGV")

RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
           "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
           "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
           "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}



class Started:
    """A process that runs in a container: its host pid, its helper's (the keeper, or
    exec's joiner: to end and reap), the pty master (``-t``)."""

    def __init__(self, pid: int, keeper_pid: int, master: Optional[int]):
        self.pid, self.keeper, self.master = pid, keeper_pid, master
        self.companions = None  # runtime.network.Companions: its network processes, if any
        self.cgroup = ""  # its own cgroup's directory (cgroups.v2), when it has one
        self.oom_killed, self.cgroup_error = False, ""

    def release_cgroup(self) -> bool:
        """Once its first process has ended: whether the OOM killer ended one of the
        container's processes (inspect's State.OOMKilled, from memory.events), and its
        cgroup removed. Called before the keeper ends: in a systemd scope the keeper holds
        the scope (cgroups.v2.hold), which systemd removes, cgroup and all, as soon as it
        is empty. Once; a failure is kept in ``cgroup_error`` and the answer is False."""
        if self.cgroup:
            from rootless.cgroups import v2
            path, self.cgroup = self.cgroup, ""
            try:
                self.oom_killed = v2.oom_killed(path)
                v2.remove(path)
            except Exception as e:
                self.cgroup_error = str(e)
        return self.oom_killed

    def ports(self) -> list:
        """The published ports as bound: ``[[host_ip, host_port, container_port, proto]]``."""
        return self.companions.ports if self.companions is not None else []

    def wait(self) -> int:
        """The process's exit code (Docker's codes), then its helpers ended and reaped."""
        code = code_of(waitpid(self.pid))
        self.release_cgroup()
        self.end_keeper()
        self.end_companions()
        return code

    def end_companions(self, wait: bool = True) -> None:
        if self.companions is not None:
            self.companions.stop(wait)
            self.companions = None

    def end_keeper(self) -> None:
        if self.keeper:
            kill_quietly(self.keeper, signals.SIGKILL)
            waitpid(self.keeper)
            self.keeper = 0


def preload(proc: dict, supervised: bool = False) -> None:
    """Import, before the fork, what this process (a bundle's first, or an ``exec``) will
    need once the container's root is ``/`` and a plain run does not (a pty, rlimits,
    the supervised filter): each import costs every run a little."""
    if supervised:
        from rootless.linux import notify  # noqa: F401
    if proc.get("terminal"):
        from rootless.linux import pty  # noqa: F401
    if proc.get("rlimits"):
        import resource  # noqa: F401


def become_process(proc: dict, strategy, chan, supervised: bool = False) -> None:
    """The last steps before exec, the same for a container's first process and for every
    ``exec`` into it (``runtime.exec``): with ``supervised``, the seccomp filter whose
    listener goes to the parent as a ``seccomp`` message (``network.bypass``; installed
    while the process still has CAP_SYS_ADMIN in the container's user namespace, so no
    no_new_privs is needed); its terminal (a pty of the container's own devpts, whose
    master goes to the parent as a ``pty`` message) or a session of its own, then the
    user, capabilities, rlimits and confinement, then the working directory. Called with
    the container's root as ``/``."""
    if supervised:
        from rootless.linux import notify  # loaded before the fork (see preload)
        machine = os.uname().machine
        try:
            listener = notify.install(notify.supervised_program(machine), machine)
        except OSError as e:  # a kernel without user notification: the ports are relayed
            sync.send(chan, "seccomp", error=e.strerror)
        else:
            sync.send(chan, "seccomp", fds=[listener])
            os.close(listener)
    if proc.get("terminal"):
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


def become_user(proc: dict, strategy) -> None:
    """The process's user, capabilities, rlimits and confinement."""
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
    for sig in range(1, signals.NSIG):
        if sig not in (signals.SIGKILL, signals.SIGSTOP):
            try:
                signals.signal(sig, signals.SIG_DFL)
            except (OSError, ValueError):
                pass
    signals.pthread_sigmask(signals.SIG_SETMASK, [])
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


def take_stdio(stdio) -> None:
    """In a child just forked: make ``stdio`` (three fds) its 0, 1 and 2."""
    for number, fd in enumerate(stdio):
        if fd != number:
            os.dup2(fd, number)


def waitpid(pid: int) -> int:
    """The wait status of our child ``pid`` (0 if it was reaped already, or no pid)."""
    while pid > 0:
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
    return 0
