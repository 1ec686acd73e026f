"""The network helpers: slirp4netns or pasta gives a container's network namespace a way out.

Either one is started by the container's owner (the CLI in the foreground, the monitor
for ``-d``) once the container's first process P exists and waits for "go" (its user and
network namespaces made, lo up; see ``runtime.launch``). Given P's pid it joins P's user
and network namespaces itself, makes a tap device there, configures it (up, address,
MTU 65520, default route) and from then on carries the namespace's packets through
ordinary sockets of the host's. ``start`` returns once the helper has said so::

    owner (CLI / monitor)                        helper (forked, then exec'd)
    check the options, find the binary
    stderr: a scratch file; a ready channel
    fork -------------------------------------> PDEATHSIG=SIGKILL, getppid() check, setsid,
                                                 /dev/null in and out, no fd of the owner's
                                                 exec slirp4netns / pasta
                                                 join P's user + net namespaces, tap up,
                                                 address, route (its sandbox, if any)
         <-------------------------------------- slirp4netns: "1" on --ready-fd
                                                 pasta: "PID\\n" into its --pid file
    return Helper (or: it ended first -> RootlessError with its last stderr line, reaped)

How each ends: slirp4netns's --exit-fd is a pidfd of P, which reports a hang-up once P
has been reaped, so it exits 0 by itself when the owner reaps P (not a crash; kernels
whose pidfd never reports a hang-up leave that to ``stop``). pasta does not watch P: the
owner stops it (``Helper.stop``) when it reaps P. Both die with the owner (their
parent-death signal: an owner killed with -9 leaves no helper).

pasta's ready word: it writes its pid file after ``pasta_ns_conf`` (link, address,
route) and after its own sandboxing, in every version read (2023-03 and 2025). The file
is a FIFO, which we open for reading first: pasta since 2024-08 closes every inherited
fd at start, so a ``/proc/self/fd/N`` of ours could not name it; it lives in a private
directory under /tmp because Debian's AppArmor profile lets pasta write only there and
in $HOME. The FIFO is removed as soon as the word arrives (or the start fails).

Defaults match slirp4netns's for both: no port of the host is forwarded by the helper
itself (``-p`` is the forwarder's job), the host's loopback is out of reach from inside
(slirp4netns --disable-host-loopback; pasta --no-map-gw), and the container's resolver
is the helper's DNS forwarder (``nameserver``).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional

from rootless.errors import RootlessError, Unsupported, UsageError

MTU = 65520  # the tap's MTU: 64 KiB frames, fewer trips through the helper (both default to it)
READY_TIMEOUT = 30.0  # seconds; each helper takes ~10-20 ms
SLIRP_CIDR = "10.0.2.0/24"  # slirp4netns: .2 the host (gateway), .3 the resolver, .100 the container
SLIRP_OPTIONS = ("allow_host_loopback", "cidr", "enable_ipv6", "mtu", "outbound_addr", "outbound_addr6")
PASTA_OPTIONS = ("args",)
PASTA_DNS = "169.254.1.1"  # link-local: never a real server's address, reached through the default route
PASTA_PORT_FLAGS = (("-t", "--tcp-ports"), ("-u", "--udp-ports"), ("-T", "--tcp-ns"), ("-U", "--udp-ns"))

# stderr lines that say nothing about why a helper failed: slirp4netns's progress and
# unwinding, pasta's complaints that there is no syslog to write to.
NOISE = ("Failed to send ", "sent tapfd=", "received tapfd=", "WARNING: Support for seccomp",
         "do_slirp", "parent failed", "child failed", "create_sandbox failed", "enable_seccomp failed",
         "exitfd event")


class Helper:
    """A started network helper: a child of the process that called ``start``."""

    def __init__(self, pid: int, name: str):
        self.pid, self.name = pid, name

    def stop(self) -> None:
        """End it (if still there) and reap it."""
        if self.pid:
            from rootless.linux import spawn
            spawn.reap(self.pid)
            self.pid = 0

    def __repr__(self) -> str:
        return "Helper(%d, %r)" % (self.pid, self.name)


def start(mode: str, options: Dict[str, object], pid: int,
          debug: Optional[Callable[[str], None]] = None) -> Helper:
    """Start ``mode``'s helper ("slirp4netns" or "pasta") for the network namespace of
    process ``pid`` and return once the helper has configured it. ``options``: the
    ``--network MODE:...`` options (see ``check``). ``debug`` is told of fallbacks.
    Raises RootlessError (bad options, helper not installed, helper failed: its last
    stderr line) and then leaves no process behind. Single-threaded callers only."""
    check(mode, options)
    if mode == "slirp4netns":
        return _slirp4netns(options, pid, debug)
    return _pasta(options, pid)


def check(mode: str, options: Dict[str, object]) -> None:
    """Refuse what ``start`` would refuse about ``options``, without starting anything:
    slirp4netns takes podman's keys (SLIRP_OPTIONS, values strings), pasta ``args`` (its
    own command-line arguments, appended as they are)."""
    if mode == "slirp4netns":
        slirp4netns_args(options, 0)
    elif mode == "pasta":
        pasta_args(options, 0, "")
    else:
        raise UsageError("no network helper is called %r (slirp4netns or pasta)" % mode)


def nameserver(mode: str, options: Dict[str, object]) -> Optional[str]:
    """The resolver the container's /etc/resolv.conf must name under ``mode``: the
    helper's DNS forwarder, which asks the host's resolver; None for modes without one."""
    if mode == "slirp4netns":
        network, _ = _cidr(str(options.get("cidr") or SLIRP_CIDR))
        return _dotted(network + 3)
    if mode == "pasta":
        return _value_of(_user_args(options), "--dns-forward") or PASTA_DNS
    return None


# -- slirp4netns ----------------------------------------------------------------------------

def slirp4netns_args(options: Dict[str, object], pid: int, ready_fd: int = -1, exit_fd: int = -1,
                     sandbox: bool = True, seccomp: bool = True) -> List[str]:
    """slirp4netns's arguments (after its path) for ``options``; UsageError names a bad one."""
    unknown = sorted(set(options) - set(SLIRP_OPTIONS))
    if unknown:
        raise UsageError("unknown slirp4netns option %r (valid: %s)" % (unknown[0], ", ".join(SLIRP_OPTIONS)))
    mtu = _mtu(options.get("mtu"))
    args = ["--configure", "--mtu=%d" % mtu]
    if not _flag(options, "allow_host_loopback"):
        args.append("--disable-host-loopback")
    if options.get("cidr") is not None:
        network, prefix = _cidr(str(options["cidr"]))
        args.append("--cidr=%s/%d" % (_dotted(network), prefix))
    if _flag(options, "enable_ipv6"):
        args.append("--enable-ipv6")
    for key in ("outbound_addr", "outbound_addr6"):
        if options.get(key) is not None:
            value = str(options[key])
            if not value or "," in value or value.startswith("-"):
                raise UsageError("slirp4netns option %s=%s: give an IP address or an interface name" % (key, value))
            args.append("--%s=%s" % (key.replace("_", "-"), value))
    if ready_fd >= 0:
        args.append("--ready-fd=%d" % ready_fd)
    if exit_fd >= 0:
        args.append("--exit-fd=%d" % exit_fd)
    if sandbox:
        args.append("--enable-sandbox")
    if seccomp:
        args.append("--enable-seccomp")
    return args + [str(pid), "tap0"]


def _slirp4netns(options, pid: int, debug) -> Helper:
    """Sandbox and seccomp when this slirp4netns and this host allow them: each is tried,
    and dropped (with a word to ``debug``) only when slirp4netns says it failed."""
    exe = _binary("slirp4netns")
    # Seccomp is tried, not asked (spawning ``--version`` to see would cost ~2 ms of every
    # run); a slirp4netns without it fails at once and is started again without.
    sandbox, seccomp = True, True
    while True:
        try:
            return _start_slirp4netns(exe, options, pid, sandbox, seccomp)
        except _Failed as failed:
            why = failed.reason()
            if sandbox and "create_sandbox failed" in failed.text:
                sandbox = False
                _tell(debug, "slirp4netns: no sandbox here (%s): running without it" % why)
            elif seccomp and "seccomp" in failed.text:
                seccomp = False
                _tell(debug, "slirp4netns: no seccomp filter here (%s): running without it" % why)
            else:
                raise failed.error() from None


def _start_slirp4netns(exe: str, options, pid: int, sandbox: bool, seccomp: bool) -> Helper:
    from rootless.linux import pidfd, spawn
    exit_fd = r = w = log = -1
    try:
        try:
            exit_fd = spawn.above_stdio(pidfd.pidfd_open(pid))
        except OSError as e:
            if e.errno != 38:  # ENOSYS, Linux < 5.3: no --exit-fd, it lives until stopped
                raise RootlessError("cannot start slirp4netns for process %d: %s" % (pid, e.strerror)) from None
        r, w = os.pipe()
        r, w = spawn.above_stdio(r), spawn.above_stdio(w)
        os.set_blocking(r, False)
        log = spawn.scratch("slirp4netns")
        argv = [exe] + slirp4netns_args(options, pid, w, exit_fd, sandbox, seccomp)
        child = spawn.spawn(argv, keep=[fd for fd in (w, exit_fd) if fd >= 0], stderr=log)
        os.close(w)
        w = -1  # slirp4netns's copy is the only one: end of file if it ends without a word
        return _await(Helper(child, "slirp4netns"), r, log, lambda data: len(data) >= 1)
    finally:
        for fd in (exit_fd, r, w, log):
            if fd >= 0:
                os.close(fd)


# -- pasta ----------------------------------------------------------------------------------

def pasta_args(options: Dict[str, object], pid: int, pid_file: str) -> List[str]:
    """pasta's arguments (after its path): ours, then the user's. Ours give way to the
    user's: no port forwarding by pasta for each of -t/-u/-T/-U the user leaves out, the
    host's loopback unreachable unless ``--map-gw`` (podman's word, not pasta's: taken out
    here), our DNS forwarder unless the user names one."""
    user = _user_args(options)
    for arg in user:
        if arg in ("-P", "--pid") or arg.startswith("--pid="):
            raise UsageError("pasta option %s: rootless gives pasta its --pid file (to learn when it is ready)" % arg)
    map_gw = "--map-gw" in user
    user = [arg for arg in user if arg != "--map-gw"]
    args = ["--config-net", "-f", "-q", "--pid", pid_file]
    for short, long in PASTA_PORT_FLAGS:
        if not any(_is_option(arg, short, long) for arg in user):
            args += [short, "none"]
    if not map_gw and "--no-map-gw" not in user:
        args.append("--no-map-gw")
    if _value_of(user, "--dns-forward") is None:
        args += ["--dns-forward", PASTA_DNS]
    return args + user + [str(pid)]


def _pasta(options, pid: int) -> Helper:
    from rootless.linux import spawn
    exe = _binary("pasta")
    where = _private_dir()
    fifo = os.path.join(where, "ready")
    r = log = -1
    try:
        os.mkfifo(fifo, 0o600)
        r = spawn.above_stdio(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
        log = spawn.scratch("pasta")
        child = spawn.spawn([exe] + pasta_args(options, pid, fifo), stderr=log)
        try:
            return _await(Helper(child, "pasta"), r, log, lambda data: data.endswith(b"\n"))
        except _Failed as failed:
            raise failed.error() from None
    finally:
        for fd in (r, log):
            if fd >= 0:
                os.close(fd)
        for remove in (lambda: os.unlink(fifo), lambda: os.rmdir(where)):
            try:
                remove()
            except OSError:
                pass


def _private_dir() -> str:
    """A new directory only we may enter, under /tmp (else $TMPDIR)."""
    for base in ("/tmp", os.environ.get("TMPDIR") or "/tmp"):
        path = os.path.join(base, "rootless-pasta-%s" % os.urandom(8).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except OSError as e:
            error = e
    raise RootlessError("cannot start pasta: cannot make a directory in /tmp: %s" % error.strerror)


# -- both -----------------------------------------------------------------------------------

class _Failed(Exception):
    """A helper that ended (or was stopped) before it said it was ready."""

    def __init__(self, name: str, text: str, status: Optional[int], late: bool = False):
        self.name, self.text, self.status, self.late = name, text, status, late

    def reason(self) -> str:
        """Its last stderr line that says something (before its usage text, if it
        printed one: the line above is getopt's complaint)."""
        lines = self.text.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Usage: "):
                lines = lines[:i]
                break
        for line in reversed(lines):
            line = line.strip()
            if line and not line.startswith(NOISE):
                return line
        return ""

    def error(self) -> RootlessError:
        why = self.reason()
        if self.late:
            return RootlessError("%s did not report the container's network ready within %d s%s; it was stopped"
                                 % (self.name, READY_TIMEOUT, ": " + why if why else ""))
        how = _how(self.status)
        if self.name == "pasta" and "External interface not usable" in self.text:
            return RootlessError("pasta cannot set up the container's network: no interface of this host has a "
                                 "default route, and pasta copies its address and route from one (pasta: %s, %s); "
                                 "use --network slirp4netns" % (why, how))
        return RootlessError("%s could not set up the container's network: %s (%s)"
                             % (self.name, why or "it said nothing", how))


def _await(helper: Helper, ready: int, log: int, complete) -> Helper:
    """``helper`` once its ready word has come on ``ready``; else it is reaped and _Failed
    raised with what it wrote to ``log``. ^C while waiting: it is reaped, the ^C goes on."""
    from rootless.linux import spawn
    try:
        data, how = spawn.wait_ready(helper.pid, ready, complete, READY_TIMEOUT)
    except BaseException:
        helper.stop()
        raise
    if how == "ready":
        return helper
    # It ended, or closed its end and is ending (a moment's grace for its exit status).
    status = spawn.reap(helper.pid, grace=0.0 if how == "late" else 2.0)
    helper.pid = 0
    raise _Failed(helper.name, spawn.read_tail(log), status, late=how == "late")


def _how(status: Optional[int]) -> str:
    if status is None:
        return "its exit status is unknown"
    if os.WIFSIGNALED(status):
        return "killed by signal %d" % os.WTERMSIG(status)
    return "exit %d" % os.WEXITSTATUS(status)


def _binary(name: str) -> str:
    from rootless.linux.idmap import which
    path = which(name)
    if not path:
        raise Unsupported("%s is not installed (--network %s needs it): install the %s package"
                          % (name, name, "passt" if name == "pasta" else name))
    return path


def _tell(debug, message: str) -> None:
    if debug is not None:
        debug(message)


def _flag(options, key: str) -> bool:
    value = options.get(key)
    if value is None:
        return False
    text = str(value).lower()
    if text not in ("true", "false"):
        raise UsageError("slirp4netns option %s=%s: give true or false" % (key, value))
    return text == "true"


def _mtu(value) -> int:
    if value is None:
        return MTU
    text = str(value)
    if not text.isdigit() or not 68 <= int(text) <= 65521:
        raise UsageError("slirp4netns option mtu=%s: give a number from 68 to 65521" % text)
    return int(text)


def _cidr(text: str):
    """(network as an int, prefix) of an IPv4 network slirp4netns accepts: prefix 1-25
    (room for its .2, .3 and .100), no host bits."""
    address, _, prefix = text.partition("/")
    parts = address.split(".")
    if not (len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts)
            and prefix.isdigit() and 1 <= int(prefix) <= 25):
        raise UsageError("slirp4netns option cidr=%s: give an IPv4 network with a prefix of 1 to 25, "
                         "like %s" % (text, SLIRP_CIDR))
    network = int.from_bytes(bytes(int(p) for p in parts), "big")
    host_bits = (1 << (32 - int(prefix))) - 1
    if network & host_bits:
        raise UsageError("slirp4netns option cidr=%s: that is not a network address (did you mean %s/%s?)"
                         % (text, _dotted(network & ~host_bits), prefix))
    return network, int(prefix)


def _dotted(value: int) -> str:
    return ".".join(str(b) for b in value.to_bytes(4, "big"))


def _user_args(options) -> List[str]:
    unknown = sorted(set(options) - set(PASTA_OPTIONS))
    if unknown:
        raise UsageError("unknown pasta option %r (valid: %s: pasta's own arguments, as in "
                         "--network pasta:-t,8080)" % (unknown[0], ", ".join(PASTA_OPTIONS)))
    args = options.get("args") or []
    if isinstance(args, str) or not all(isinstance(a, str) for a in args):
        raise UsageError("pasta option args: give a list of pasta's arguments")
    return list(args)


def _is_option(arg: str, short: str, long: str) -> bool:
    """Whether ``arg`` is pasta's ``short``/``long`` option, in any of getopt's spellings
    (-t 80, -t80, --tcp-ports 80, --tcp-ports=80)."""
    return arg == long or arg.startswith(long + "=") or (arg.startswith(short) and not arg.startswith("--"))


def _value_of(args: List[str], long: str) -> Optional[str]:
    """The first value given to ``long`` in ``args`` (``--x V`` or ``--x=V``)."""
    for i, arg in enumerate(args):
        if arg == long and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(long + "="):
            return arg[len(long) + 1:]
    return None
