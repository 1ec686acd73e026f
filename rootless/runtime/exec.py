"""``exec``: one more process in a running container, in every namespace of its first.

The CLI forks E, which joins the namespaces of the container's first process P (user
first, then the rest: ``linux.ns.join``), and E forks X as a sibling (``ns.fork_sibling``):
X lands in P's pid namespace (a pid namespace applies to the children of whoever joined
it) and is the CLI's own child, so the CLI waits for it and relays its pty exactly as for
a foreground ``run`` (``runtime.foreground``). X then takes the same last steps as P,
through the same code (``process.become_process``: terminal, user, capabilities, rlimits,
no_new_privs, the id strategy's confinement, working directory), and execs::

  CLI (host)                     E (the CLI's child)               X (in the container)
  ----------                     -------------------               --------------------
  record: running, pid P
  fork E ----------------------> (with limits: "cgroup"; the CLI
                                 moves E into the container's cgroup)
                                 open P's namespaces, join them
                                 (user, cgroup, ipc, uts, net,
                                 pid, mnt: / is the container's)
                                 fork_sibling X ----------------->  its pid namespace is P's
         <-------- pid X -------- exit                              --user resolved in the
                                                                    container's /etc/passwd
         <-------- pty + fd ------------------------------------- [-t] become_process
         <-------- end of file (exec) or error ------------------ execute (126/127)
  wait for X (relay the pty)

Nothing here needs the monitor, so ``exec`` works whoever started the container and
after the CLI that started it has gone. X has no parent-death signal: like Docker's, an
``exec``'d process does not end with the client; once the CLI is gone the container's
pid 1 is its parent (the kernel's rule for orphans of a pid namespace). It ends with the
container: the end of P ends its pid namespace.

Everything X and E need after joining the mount namespace is imported before the fork
(the zipapp and the host's Python library are not visible from the container's root).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict, Optional, Sequence, Tuple

from rootless import environ
from rootless.errors import Conflict, RootlessError, UsageError
from rootless.linux import ns, sync
from rootless.runtime import idmapping
from rootless.runtime import process as steps
from rootless.runtime.process import Started


class ExecOptions:
    """What ``exec`` changes in the container's own process (config.json's ``process``)."""

    def __init__(self, args: Sequence[str], env: Sequence[str] = (), workdir: Optional[str] = None,
                 user: Optional[str] = None, tty: bool = False, privileged: bool = False,
                 host_env: Optional[Dict[str, str]] = None):
        if not args:
            raise UsageError('"exec" requires at least 2 arguments: CONTAINER COMMAND [ARG...]')
        if workdir is not None and workdir and not workdir.startswith("/"):
            raise UsageError("the working directory %r is invalid: it must be an absolute path" % workdir)
        self.args, self.env, self.workdir = list(args), list(env), workdir
        self.user, self.tty, self.privileged = user, tty, privileged
        self.host_env = os.environ if host_env is None else host_env


def process(base: dict, opts: ExecOptions, all_caps: Sequence[str] = ()) -> dict:
    """The exec'd process, from the container's: its environment with ``-e`` on top
    (``-e NAME`` passes the host's value, as ``run`` does), its user unless ``-u``
    (resolved later, inside), its working directory unless ``-w``, its capabilities
    unless ``--privileged``. Pure: unit-tested without a container."""
    proc = {k: v for k, v in base.items() if k not in ("args", "terminal", "env", "cwd")}
    env = environ.to_dict(base.get("env"))
    environ.apply_flags(env, opts.env, opts.host_env)
    if opts.tty:
        env.setdefault("TERM", "xterm")
    if opts.user and not any(item.partition("=")[0] == "HOME" for item in opts.env):
        env.pop("HOME", None)  # the -u user's, found in the container (_become)
    proc["env"] = environ.to_list(env)
    proc["args"] = list(opts.args)
    proc["terminal"] = opts.tty
    proc["cwd"] = opts.workdir or base.get("cwd") or "/"
    if opts.privileged:  # all_caps: every capability (the CLI knows the list)
        everything = list(all_caps)
        proc["capabilities"] = {k: everything for k in ("bounding", "effective", "permitted", "inheritable")}
    return proc


def start(bundle, pid: int, proc: dict, user=None, stdio: Tuple[int, int, int] = (0, 1, 2),
          on_pid=None, alive=None, cgroup: str = "") -> Started:
    """Start ``proc`` in the container whose first process is ``pid``; X's pid, E's (to
    reap), the pty master. Raises what the set-up raised (126/127 for the command).

    ``user``: for ``-u``, (its text, ``resolve(read)`` -> a user with uid, gid,
    additional_gids, name, home), called in X with a reader of the container's files
    (the CLI passes ``bundle.users.resolve``; the runtime does not import the bundle).
    ``alive()``: whether ``pid`` is still the container's first process, asked once its
    namespaces are open (a pid that ended may be reused by any process of yours).
    ``cgroup``: the container's own cgroup (its record's): E is moved into it before it
    joins the cgroup namespace, so X counts against the container's limits."""
    strategy = idmapping.get(bundle.idmap)
    # Its published ports go to its server directly: X comes under the same filter.
    intake = os.path.join(bundle.dir, "ports.sock")
    supervised = os.path.exists(intake)
    steps.preload(proc, supervised)
    # -u: looked up in the container's files, by X, with what is loaded now
    resolve = (lambda: (user[0], user[1](_read))) if user else None
    # --pid container:NAME: its namespaces list no pid namespace of its own, but its
    # processes live in the other's (runtime.joins): an exec'd one joins them there.
    opened = ns.open_namespaces(pid, list(bundle.namespaces) + (["pid"] if bundle.pid_container else []))
    flags = {flag for _, flag in opened}
    if (alive is not None and not alive()) or not {ns.CLONE_NEWUSER, ns.CLONE_NEWNS} <= flags:
        # Never "join" namespaces we share with pid: the command would run on the host.
        for fd, _ in opened:
            os.close(fd)
        raise _refusal("container %s is not running" % os.path.basename(bundle.dir))
    parent_end, child_end = sync.pair()
    try:
        helper = os.fork()
        if helper == 0:
            parent_end.close()
            steps.take_stdio(stdio)
            maps = (bundle.uid_map, bundle.gid_map)
            sync.child_main(lambda: _enter(opened, proc, resolve, strategy, maps, child_end, bool(cgroup),
                                           supervised), child_end)
    finally:
        for fd, _ in opened:
            os.close(fd)
        child_end.close()
    child = master = None
    try:
        while True:
            message, fds = sync.recv(parent_end, want_fds=True)
            if message is None:
                break
            if message.get("op") == "cgroup":
                from rootless.cgroups import v2
                v2.join(cgroup, helper)
                sync.send(parent_end, "entered")
            elif message.get("op") == "pid":
                child = message["pid"]
                if on_pid is not None:
                    on_pid(child)
            elif message.get("op") == "pty" and fds:
                master = fds[0]
            elif message.get("op") == "seccomp":
                from rootless.runtime import network
                network.supervise(intake, fds, message)
            elif message.get("op") == "error":
                steps.waitpid(child or 0)  # 0: none yet
                steps.waitpid(helper)
                helper = child = 0
                sync.raise_error(message)
    except BaseException:
        for p in (child, helper):
            if p:
                steps.kill_quietly(p, 9)
                steps.waitpid(p)
        if master is not None:
            os.close(master)
        raise
    finally:
        parent_end.close()
    if not child:
        raise RootlessError("exec: the process could not be started (exit %s)" % steps.code_of(steps.waitpid(helper)))
    return Started(child, helper, master)


def _enter(opened, proc: dict, resolve, strategy, maps, chan, cgroup: bool, supervised: bool) -> int:
    """E: into the container's cgroup (its parent moves it), the namespaces, then X as the
    CLI's child."""
    if cgroup:
        sync.send(chan, "cgroup")
        sync.raise_error(sync.recv(chan))
    ns.join(opened)
    child = ns.fork_sibling()
    if child == 0:
        sync.child_main(lambda: _become(proc, resolve, strategy, maps, chan, supervised), chan)
    sync.send(chan, "pid", pid=child)
    return 0


def _become(proc: dict, resolve, strategy, maps, chan, supervised: bool) -> int:
    """X: the container's root is ``/`` here."""
    if resolve is not None:
        user, found = resolve()
        for kind, number, idmap in (("uid", found.uid, maps[0]), ("gid", found.gid, maps[1])):
            if not any(m["containerID"] <= number < m["containerID"] + m["size"] for m in idmap):
                raise UsageError("exec -u %s: %s %d does not exist in this container, which maps only "
                                 "%s (%s mode: without /etc/subuid ranges a container has one id)"
                                 % (user, kind, number, _ids(idmap), strategy.name))
        proc = dict(proc, user={"uid": found.uid, "gid": found.gid,
                                "additionalGids": list(found.additional_gids)})
        env = proc.get("env") or []
        if not any(item.startswith("HOME=") for item in env):
            home = found.home if found.name else ("/root" if found.uid == 0 else "/")
            proc["env"] = env + ["HOME=" + home]
    steps.become_process(proc, strategy, chan, supervised)
    steps.execute(proc)
    return 0  # not reached


def _ids(idmap) -> str:
    return ", ".join(str(m["containerID"]) if m["size"] == 1 else
                     "%d-%d" % (m["containerID"], m["containerID"] + m["size"] - 1) for m in idmap)


def _read(path: str) -> str:
    """A file of the container (its root is ``/`` by now); "" if it has none."""
    try:
        with open(path, errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return ""


def running_pid(record: dict) -> int:
    """The host pid of a container's first process, or Docker's refusal to exec."""
    from rootless.runtime import state
    if record.get("status") == state.PAUSED:
        raise _refusal("container %s is paused, unpause the container before exec" % record["id"])
    if record.get("status") != state.RUNNING or not record.get("pid"):
        raise _refusal("container %s is not running" % record["id"])
    return record["pid"]


def _refusal(message: str) -> Conflict:
    """Docker's CLI exits 1 when its daemon refuses an exec (as ``top`` and ``attach``)."""
    error = Conflict(message)
    error.exit_code = 1
    return error
