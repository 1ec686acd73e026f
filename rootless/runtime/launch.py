"""Start a container and see it to its end, in the foreground (no daemon).

Three processes, forked (not re-executed: the CLI has started no thread, and a fork saves
an interpreter start, ~30 ms, on every run)::

  CLI (host, you)               K: keeper (host pid ns)          P: pid 1 of the container
  ---------------               -----------------------          -------------------------
  fork K  --------------------> setsid; die with the CLI
                                unshare(USER)
          <------- "map" ------  (subuid mode only)
  newuidmap/newgidmap K
          -------- "go" ------>
                                [single-uid: writes its own maps]
                                unshare(MNT UTS IPC PID CGROUP)
                                / made private; rootfs mounted
                                fork P  -----------------------> die with K; hostname; mounts;
          <------ "pid N" -----                                  pivot_root; [-t: pty master
                                wait for P                       -> CLI]; user, caps,
                                                                 no_new_privs, seccomp; exec
  wait for K                    exit with P's status

Setup errors travel on the error pipe as ``"<exit code>:<message>"``; its write end is
close-on-exec, so a successful exec leaves it silent. The CLI reads it once K is gone.
Nothing leaks: K, P and fuse-overlayfs die with their parent (PR_SET_PDEATHSIG, and a
check right after it, since the kernel never signals for a parent already gone), P's
death ends every process of its pid namespace, and every mount lives in the container's
own mount namespaces, which disappear with their last process. Signals sent to the CLI
are forwarded to P from before K is forked (held until P's pid is known).
"""

# Everything the container's processes use is imported here, before the fork: after
# pivot_root neither the zipapp nor the host's Python library is visible any more.
import errno
import fcntl
import os
import signal
import socket
import stat
import struct
import sys
import termios
from typing import Dict, List, Optional

from rootless.errors import CannotInvoke, CommandNotFound, RootlessError
from rootless.linux import caps, mount, ns, seccomp
from rootless.linux.child import read_all
from rootless.runtime import mounts, terminal
from rootless.storage.copy import real_dir_path

# Signals the CLI passes on to the container, as Docker's sig-proxy does.
FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM",
             "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGVTALRM", "SIGPROF", "SIGXCPU",
             "SIGXFSZ", "SIGPWR", "SIGSYS", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGSEGV")


class Launch:
    """Everything a start needs, decided by the caller (the container record)."""

    def __init__(self, spec: dict, cdir: str, driver, layers, idmap: dict, interactive: bool,
                 init: bool = False, apply_owners: Optional[Dict[str, List[int]]] = None, debug=None):
        self.spec, self.cdir, self.driver, self.layers = spec, cdir, driver, layers
        self.idmap, self.interactive, self.init = idmap, interactive, init
        self.apply_owners = apply_owners
        self.tty = bool(spec["process"].get("terminal"))
        self.debug = debug
        self.pid: Optional[int] = None  # P's host pid once known
        self.held: List[int] = []  # signals that came before it was known

    # -- the CLI's side ---------------------------------------------------------------

    def run(self, on_started=None) -> int:
        """Start the container and wait for it; its exit code (Docker's codes)."""
        sync_cli, sync_keeper = socket.socketpair()
        tty_cli, tty_container = socket.socketpair() if self.tty else (None, None)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        cli = os.getpid()
        # Forwarding starts before the fork: P may run its command, and be signalled,
        # before its pid reaches us; until then a signal is held for it, not lost (nor
        # fatal to the CLI, which would take the container with it).
        old = self._forward_signals()
        keeper = os.fork()
        if keeper == 0:
            _restore_handlers(old)
            sync_cli.close()
            os.close(err_r)
            if tty_cli is not None:
                tty_cli.close()
            _child_main(lambda: self._keeper(cli, sync_keeper, tty_container, err_w), err_w)
        sync_keeper.close()
        os.close(err_w)
        if tty_container is not None:
            tty_container.close()
        try:
            code = self._supervise(keeper, sync_cli, tty_cli, on_started)
        finally:
            _restore_handlers(old)
            sync_cli.close()
            if tty_cli is not None:
                tty_cli.close()
        message = _read_all(err_r)
        if message:
            status, _, text = message.partition(":")
            status = int(status) if status.isdigit() else 125
            raise {126: CannotInvoke, 127: CommandNotFound}.get(status, RootlessError)(text)
        return code

    def _supervise(self, keeper: int, sync, tty_sock, on_started) -> int:
        f = sync.makefile("rb")
        try:
            line = f.readline()
            if line == b"map\n":
                try:
                    self._write_maps(keeper)
                    sync.sendall(b"go\n")
                except BaseException:
                    os.kill(keeper, signal.SIGKILL)
                    raise
                line = f.readline()
            if line.startswith(b"pid "):
                self.pid = int(line.split()[1])
        finally:
            f.close()
        if self.pid is None:
            return _wait_code(keeper)  # the keeper failed; the error pipe says why
        for sig in self.held:
            _kill_quietly(self.pid, sig)
        if on_started is not None:
            on_started(self.pid)
        if tty_sock is not None:
            return self._attach_tty(keeper, tty_sock)
        return _wait_code(keeper)

    def _forward_signals(self) -> dict:
        old = {}

        def forward(sig, frame):
            if self.pid is None:
                self.held.append(sig)
            else:
                _kill_quietly(self.pid, sig)
        for name in FORWARDED:
            sig = getattr(signal, name, None)
            if sig is not None:
                old[sig] = signal.signal(sig, forward)
        return old

    def _attach_tty(self, keeper: int, tty_sock) -> int:
        try:
            master = terminal.recv_fd(tty_sock)
        except OSError:
            return _wait_code(keeper)  # setup failed before the pty existed
        status = []

        def child_done() -> bool:
            if not status:
                pid, st = os.waitpid(keeper, os.WNOHANG)
                if pid:
                    status.append(st)
            return bool(status)
        stdin_tty = os.isatty(0)
        terminal.copy_winsize(0 if stdin_tty else 1, master)
        old_winch = signal.signal(signal.SIGWINCH, lambda s, f: terminal.copy_winsize(0 if stdin_tty else 1, master))
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        old_wake = signal.set_wakeup_fd(wfd)
        old_chld = signal.signal(signal.SIGCHLD, lambda s, f: None)
        try:
            raw = terminal.RawMode(0) if self.interactive else None
            if raw is not None:
                raw.__enter__()
            try:
                terminal.relay(0 if self.interactive else None, master if self.interactive else None,
                               master, 1, child_done, wake_fd=rfd)
            finally:
                if raw is not None:
                    raw.__exit__(None, None, None)
        finally:
            signal.set_wakeup_fd(old_wake)
            signal.signal(signal.SIGCHLD, old_chld)
            signal.signal(signal.SIGWINCH, old_winch)
            os.close(rfd)
            os.close(wfd)
            os.close(master)
        if not status:
            status.append(os.waitpid(keeper, 0)[1])
        return _code(status[0])

    def _write_maps(self, pid: int) -> None:
        write_maps(pid, self.idmap)

    # -- K: the keeper ----------------------------------------------------------------

    def _keeper(self, cli: int, sync, tty_sock, err_w: int) -> int:
        os.setsid()
        caps.set_pdeathsig(signal.SIGKILL)
        # The kernel signals only for a parent that dies after the call. An orphan is
        # adopted by init or by a subreaper (systemd --user, tmux...), so compare with the
        # CLI's pid rather than with 1.
        if os.getppid() != cli:
            return 1  # the CLI died before we could notice
        ns.unshare(ns.CLONE_NEWUSER)
        if self.idmap["mode"] == "subuid":
            sync.sendall(b"map\n")
            if sync.recv(3) != b"go\n":
                return 125
        else:
            _write_own_maps(self.idmap)
        ns.unshare(ns.CLONE_NEWNS)
        # Mounts made from here must never reach the host's namespace, whatever its
        # propagation (the host's / may be shared).
        mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
        # The rootfs is mounted before the new pid namespace exists, so that a
        # fuse-overlayfs process stays outside it, invisible to the container.
        rootfs = self.driver.mount(self.cdir, self.layers)
        try:
            flags = ns.CLONE_NEWUTS | ns.CLONE_NEWIPC | ns.CLONE_NEWPID
            try:
                ns.unshare(flags | ns.CLONE_NEWCGROUP)
            except OSError:
                ns.unshare(flags)  # kernels without cgroup namespaces
            if self.apply_owners:
                _apply_owners(rootfs, self.apply_owners, self.cdir)
            # Only K holds the write end: P sees it closed if K died before P's pdeathsig.
            lifeline_r, lifeline_w = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
            if pid == 0:
                sync.close()
                os.close(lifeline_w)
                _child_main(lambda: self._container(rootfs, tty_sock, lifeline_r), err_w)
            os.close(lifeline_r)
            sync.sendall(b"pid %d\n" % pid)
            sync.close()
            if tty_sock is not None:
                tty_sock.close()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_IGN)
            return _wait_code(pid)
        finally:
            self.driver.release()

    # -- P: the container's first process ----------------------------------------------

    def _container(self, rootfs: str, tty_sock, lifeline: int) -> int:
        caps.set_pdeathsig(signal.SIGKILL)
        if _parent_gone(lifeline):
            return 1  # K died before the call: no signal would ever come
        # A mount namespace of our own below the keeper's: pivot_root moves the root of
        # every process of the namespace, and the keeper's fuse-overlayfs must keep the
        # host's view (through its own mount it would wait on itself forever).
        ns.unshare(ns.CLONE_NEWNS)
        mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
        spec = self.spec
        if spec.get("hostname"):
            socket.sethostname(spec["hostname"])
        ops = mounts.plan(spec, rootfs, self.cdir, self.idmap["mode"] == "subuid")
        mounts.apply(ops, rootfs, self.debug)
        proc = spec["process"]
        cwd = mounts.secure_join(rootfs, proc.get("cwd") or "/")
        if not os.path.isdir(cwd):
            os.makedirs(cwd, 0o755, exist_ok=True)
        mounts.pivot(rootfs)
        if spec.get("root", {}).get("readonly"):
            mount.remount_readonly("/")
        if self.tty:
            master, slave = _open_pty()
            terminal.send_fd(tty_sock, master)
            os.close(master)
            tty_sock.close()
            terminal.make_controlling_tty(slave)
        else:
            os.setsid()
            if not self.interactive:
                null = os.open("/dev/null", os.O_RDONLY)
                os.dup2(null, 0)
                os.close(null)
        self._become_user(proc)
        try:
            os.chdir(proc.get("cwd") or "/")
        except OSError as e:
            raise RootlessError("cannot change to the working directory %s: %s" % (proc.get("cwd"), e.strerror))
        if self.init:
            return _init(lambda: _exec(proc))
        _exec(proc)
        return 0  # not reached

    def _become_user(self, proc: dict) -> None:
        user = proc.get("user", {})
        uid, gid = user.get("uid", 0), user.get("gid", 0)
        caps.drop_bounding(proc.get("capabilities", {}).get("bounding", []))
        if self.idmap["mode"] == "subuid":
            os.setgroups(list(user.get("additionalGids", [])))
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if uid == 0:
            kept = proc.get("capabilities", {}).get("effective", [])
            caps.set_caps(kept, kept, kept)
        if proc.get("noNewPrivileges", True) or self.idmap["mode"] != "subuid":
            caps.set_no_new_privs()
        if self.idmap["mode"] != "subuid":
            # One id only: chown-family and set*id calls that cannot be honoured succeed
            # as no-ops, so package managers still work (see linux/seccomp.py).
            seccomp.install(seccomp.fake_id_calls_program(os.uname().machine))


def _parent_gone(lifeline: int) -> bool:
    """Whether the keeper has exited: the pipe end it holds open is closed. (P is pid 1 of
    its pid namespace, so getppid() is 0 whoever its parent is.)"""
    os.set_blocking(lifeline, False)
    try:
        return os.read(lifeline, 1) == b""
    except BlockingIOError:
        return False
    finally:
        os.close(lifeline)


def _exec(proc: dict) -> None:
    """Replace this process with the container's command, or report why not (126/127)."""
    args = proc["args"]
    env = dict(item.split("=", 1) for item in proc.get("env", []) if "=" in item)
    path = _find_executable(args[0], env.get("PATH", ""))
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


def _find_executable(name: str, path: str) -> str:
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


def _init(start) -> int:
    """``--init``: pid 1 that starts the command, passes signals on and reaps every zombie."""
    child = os.fork()
    if child == 0:
        os.setpgid(0, 0)
        _child_main(start, None)
    for name in FORWARDED:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, lambda s, f: _kill_quietly(child, s))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        if pid == child:
            return _code(status)


def _restore_handlers(old: dict) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)


def _kill_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _open_pty():
    """A pty pair from the container's own devpts instance (so the tty is /dev/pts/0)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, termios.TIOCSPTLCK if hasattr(termios, "TIOCSPTLCK") else 0x40045431, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, 0x80045430, b"\0\0\0\0"))[0]  # TIOCGPTN
    slave = os.open("/dev/pts/%d" % number, os.O_RDWR | os.O_NOCTTY)
    return master, slave


def write_maps(pid: int, idmap: dict) -> None:
    """Subuid mode: the setuid helpers write ``pid``'s maps, which may name sub-ids."""
    for tool, key in (("newuidmap", "uid_map"), ("newgidmap", "gid_map")):
        args = [str(n) for line in idmap[key] for n in line]
        code, output = _spawn([idmap[tool], str(pid)] + args)
        if code:
            raise RootlessError("%s failed: %s" % (tool, output.strip()))


def _spawn(argv: List[str]):
    """(exit status, stdout+stderr) of a helper: posix_spawn, since importing subprocess
    would cost every run ~6 ms."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, w, 2)])
    finally:
        os.close(w)
    output = _read_all(r)
    return _wait_code(pid), output


def _write_own_maps(idmap: dict) -> None:
    """Single-uid mode: one id each way, which an unprivileged process may write itself
    (after denying setgroups, which the kernel requires first)."""
    for name, text in (("setgroups", "deny"),
                       ("uid_map", "".join("%d %d %d\n" % tuple(l) for l in idmap["uid_map"])),
                       ("gid_map", "".join("%d %d %d\n" % tuple(l) for l in idmap["gid_map"]))):
        with open("/proc/self/" + name, "w") as f:
            f.write(text)


def _apply_owners(rootfs: str, owners: Dict[str, List[int]], cdir: str) -> None:
    """Give image files their recorded owners, now that sub-ids are mapped (first start).
    On overlay this copies up only those entries; chown clears set-id bits, so the mode is
    put back."""
    for rel, (uid, gid) in sorted(owners.items()):
        path = real_dir_path(rootfs, rel)  # never through a symlink of the image
        if path is None:
            continue
        try:
            info = os.lstat(path)
            os.lchown(path, uid, gid)
            if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o6000:
                os.chmod(path, stat.S_IMODE(info.st_mode))
        except OSError:
            continue  # gone in a higher layer, or an id beyond the mapped range
    with open(os.path.join(cdir, "owners.applied"), "w"):
        pass


def _child_main(fn, err_w: Optional[int]) -> None:
    """Run ``fn`` in a forked child and _exit with its code; errors go to the error pipe."""
    code = 125
    try:
        code = fn() or 0
    except RootlessError as e:
        code = e.exit_code
        _report(err_w, code, str(e))
    except OSError as e:
        _report(err_w, 125, "%s%s" % (e.strerror or e, (": " + e.filename) if e.filename else ""))
    except BaseException as e:
        _report(err_w, 125, "%s: %s" % (type(e).__name__, e))
    finally:
        try:
            sys.stdout.flush()
        except BaseException:
            pass
        os._exit(code)


def _report(err_w: Optional[int], code: int, message: str) -> None:
    if err_w is not None:
        try:
            os.write(err_w, ("%d:%s" % (code, " ".join(message.split()))).encode(errors="replace")[:4000])
        except OSError:
            pass


def _read_all(fd: int) -> str:
    return read_all(fd).strip()


def _wait_code(pid: int) -> int:
    return _code(os.waitpid(pid, 0)[1])


def _code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def as_mapped_root(idmap: dict, fn) -> None:
    """Run ``fn`` in a child that is root of a user namespace with the container's id
    mapping (how files a container made under sub-ids are removed)."""
    sync_parent, sync_child = socket.socketpair()
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        sync_parent.close()
        os.close(err_r)

        def body():
            ns.unshare(ns.CLONE_NEWUSER)
            sync_child.sendall(b"map\n")
            if sync_child.recv(3) != b"go\n":
                return 125
            fn()
            return 0
        _child_main(body, err_w)
    sync_child.close()
    os.close(err_w)
    try:
        if sync_parent.recv(4) == b"map\n":
            write_maps(pid, idmap)
            sync_parent.sendall(b"go\n")
    finally:
        sync_parent.close()
    code = _wait_code(pid)
    message = _read_all(err_r)
    if code:
        raise RootlessError(message.partition(":")[2] or "removing as the container's root failed")
