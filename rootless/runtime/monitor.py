"""The monitor: the parent of every detached container of one user, with no daemon.

One monitor per user (per run dir and build of rootless), started on demand by the first
``run -d``/``start`` and gone when its last container has ended; a later ``run -d`` starts
a new one. Clients talk to it over ``RUN/monitor-<build>.sock`` (SOCK_SEQPACKET, the
``linux.sync`` messages; the client's side is ``runtime.monitor_client``)::

  CLI                              monitor                                container (P)
  connect (spawn it if nobody listens)
  start {root, run, id} ---------> launch.start(bundle, stdio = pipes)  --> exec
                                   record: running, pid, monitor = itself
         <--------- started {pid} | error {type, errno, message}
  exit                             poll(): output -> json-file log        ...
                                   SIGCHLD: exit code -> record; restart policy, --rm

``attach`` (and ``start`` with ``attach``, for ``run -it``) keeps its connection in the
loop: the container's output goes to it as well as to the log, its input to the container
(``runtime.attach`` draws that protocol and holds the clients' state).

Why one process for all containers, not one per container as podman's conmon: a Python
process costs about 0.7 MiB of private memory even when forked from a warm parent, more
than conmon's whole footprint, so a monitor per container could never stay under
podman's memory for 20 idle containers. The container's first process is the monitor's
own child (the keeper forks it as a sibling, ``ns.fork_sibling``), and the keeper exits,
so an idle container costs the monitor a few fds and a small dict.

Why a fresh interpreter (``python3 -I -S`` on the same zipapp or package), not a fork of
the CLI: the monitor outlives the CLI by hours and should hold only the modules it needs
and none of the CLI's state (argparse, the image store). It starts once per user, so its
~30 ms of start-up is paid by the first ``run -d`` only. It is double-forked into a session
of its own, has no terminal, and ignores SIGHUP and SIGINT: closing the terminal or
ending the login session that started it ends neither it nor its containers.

One loop, no threads: ``poll`` over the listening socket, each container's output and a
signal wake-up pipe (SIGCHLD). Containers die with the monitor (their parent-death signal):
``kill -9`` of the monitor leaves their records running with a dead owner, which the next
reader settles as exited (137, the truth: the kernel killed them). A record is only ever
changed under its lock on a fresh read (``state.Containers.update``), since ``stop``,
``kill`` and ``rm`` write it too.
"""

import errno
import os
import select
import socket
import sys
import time
from typing import Dict, List, Optional

from rootless.linux import signals, sync
from rootless.runtime.attach import Attachments, attachable
from rootless.runtime.restart import restart_wanted

RESTART_MAX_DELAY = 60.0  # Docker's: 100 ms doubling up to a minute, reset after 10 s up
CHUNK = 65536


class Watched:
    """One container the monitor is the parent of."""

    def __init__(self, containers, cid: str):
        self.containers, self.cid = containers, cid
        self.started = None  # launch.Started
        self.oom_killed = False  # the last run's (its cgroup said so)
        self.streams: Dict[int, str] = {}  # fd -> "stdout" | "stderr"
        self.writer = None
        self.stdin_w: Optional[int] = None
        self.began = 0.0
        self.code: Optional[int] = None
        self.restart_at: Optional[float] = None
        self.delay = 0.1
        self.reported = (None, 0)  # the log error and lost lines last left for `logs`


class Monitor:
    def __init__(self, path: str):
        self.path = path
        self.watched: Dict[str, Watched] = {}
        self.by_pid: Dict[int, Watched] = {}
        self.keepers: Dict[int, Watched] = {}
        self.companions: Dict[int, tuple] = {}  # pid -> (Watched, runtime.network.Companion)
        self.poll = select.poll()
        self.fds: Dict[int, Watched] = {}
        self.listener: Optional[socket.socket] = None
        self.wake_r = self.wake_w = -1
        self.attach = Attachments(self.poll)

    # -- life of the monitor ---------------------------------------------------------------

    def serve(self) -> None:
        if not _lock(self.path):
            return  # another monitor of this build is there
        self.listener = _bind(self.path)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signals.set_wakeup_fd(self.wake_w)
        signals.signal(signals.SIGCHLD, lambda s, f: None)
        self.poll.register(self.listener.fileno(), select.POLLIN)
        self.poll.register(self.wake_r, select.POLLIN)
        idle_since: Optional[float] = None
        while True:
            timeout = self._next_timeout()
            try:
                events = self.poll.poll(timeout)
            except InterruptedError:
                events = []
            # A failure in one container's handling must not end the monitor: every
            # container would die with it.
            for fd, mask in events:
                _guarded(self._event, fd, mask)
            _guarded(self._reap)
            _guarded(self._due_restarts)
            _guarded(self.attach.tick)
            if self.watched or self.attach.lingering():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > 0.5 and self._leave():
                return

    def _next_timeout(self) -> Optional[int]:
        due = [w.restart_at for w in self.watched.values() if w.restart_at is not None]
        if not self.watched or self.attach.lingering():
            return 200
        if not due:
            return None
        return max(0, int((min(due) - time.monotonic()) * 1000) + 1)

    def _leave(self) -> bool:
        """No container left: stop listening, then serve whoever already connected."""
        os.unlink(self.path)
        self.listener.setblocking(False)
        served = False
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            self._serve_client(conn)
            served = True
        if served or self.watched:
            # Containers came with those requests: listen again and stay.
            self.poll.unregister(self.listener.fileno())
            self.listener.close()
            self.listener = _bind(self.path)
            self.poll.register(self.listener.fileno(), select.POLLIN)
            return False
        self.listener.close()
        return True

    def _event(self, fd: int, mask: int) -> None:
        if self.listener is not None and fd == self.listener.fileno():
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            self._serve_client(conn)
        elif fd == self.wake_r:
            try:
                while os.read(self.wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        elif fd in self.fds:
            self._output(self.fds[fd], fd)
        elif self.attach.owns(fd):
            self.attach.event(fd, mask)

    def _serve_client(self, conn: socket.socket) -> None:
        kept = False
        try:
            conn.settimeout(5)
            message = sync.recv(conn)
            if message:
                kept = self._request(conn, message)
        except OSError:
            pass
        finally:
            if not kept:
                conn.close()

    def _request(self, conn: socket.socket, message: dict) -> bool:
        """Answer one request; whether ``conn`` stays, registered as an attached client."""
        op, cid = message.get("op"), message.get("id", "?")
        attach = message.get("attach") if op == "start" else message
        try:
            if op == "start":
                pid = self.start(_paths(message), cid)
            elif op == "attach":
                pid = attachable(self.watched.get(cid), cid)
            else:
                raise ValueError("unknown request %r" % op)
        except BaseException as e:
            _log("%s of %s failed: %s: %s" % (op, cid[:12], type(e).__name__, e))
            sync.report(conn, e)
            return False
        if not attach:
            sync.send(conn, "started", pid=pid)
            return False
        w = self.watched[cid]
        sync.send(conn, "started" if op == "start" else "attached", pid=pid, tty=w.started.master is not None)
        # Before the next poll: no output of the container can have been read meanwhile.
        size = (attach.get("rows") or 0, attach.get("cols") or 0)
        self.attach.add(w, conn, bool(attach.get("stdin")), size if all(size) else None)
        return True

    # -- one container -----------------------------------------------------------------

    def start(self, paths, cid: str) -> int:
        from rootless.errors import Conflict
        from rootless.runtime import state
        containers = state.Containers(paths)
        w = self.watched.get(cid)
        if w is not None and w.started is not None:
            raise Conflict("container %s is already running" % cid[:12])
        w = w or Watched(containers, cid)
        w.restart_at = None  # a user's start replaces a restart that was still due
        self._launch(w, first=True)
        return w.started.pid

    def _launch(self, w: Watched, first: bool) -> None:
        from rootless.errors import Conflict, NotFound
        from rootless.runtime import state
        from rootless.runtime.config import Bundle
        containers = w.containers
        record = containers.read(w.cid)
        if record is None:
            raise NotFound("No such container: %s" % w.cid)
        if first and record["status"] in state.ACTIVE:
            raise Conflict("container %s is already running" % record["name"])
        if record["status"] == state.REMOVING:
            raise NotFound("container %s is being removed" % record["name"])
        if not first and record["status"] != state.RESTARTING:
            raise Conflict("container %s was stopped while it waited: no restart" % record["name"])
        if not first and record.get("restart_cancelled"):
            raise Conflict("container %s was stopped: no restart" % record["name"])
        bundle = Bundle.load(containers.dir(w.cid))
        if bundle.network == "container" or bundle.pid_container:  # another's namespaces,
            from rootless.runtime import joins  # opened while it is checked to run
            joins.join(containers, bundle)
        stdio, mine = self._stdio(record, bundle)
        try:
            from rootless.runtime import launch
            w.started = launch.start(bundle, stdio)
        except BaseException:
            for fd in list(mine):
                os.close(fd)
            raise
        finally:
            for fd in stdio:
                if fd > 2:
                    os.close(fd)
        w.began = time.monotonic()
        w.writer = self._writer(record, containers.dir(w.cid))
        w.reported = (None, 0)
        if w.writer is not None:
            self._report_loss(w)  # it could not even open the file
        self._watch(w, mine, bundle)
        if w.started.companions is not None:
            for c in w.started.companions.procs:
                self.companions[c.pid] = (w, c)
        pid = w.started.pid
        owner = state.me()

        ports, cgroup = w.started.ports(), w.started.cgroup
        containers.update(w.cid, lambda r: state.begin_run(r, owner, pid, restarted=not first, ports=ports,
                                                              cgroup=cgroup))

    def _stdio(self, record: dict, bundle):
        """(stdin, stdout, stderr) for the container, and the ends the monitor keeps."""
        mine: Dict[int, str] = {}
        if record.get("interactive"):
            stdin, keep = os.pipe2(os.O_CLOEXEC)
            mine[keep] = "stdin"  # held open, never written: the container's stdin stays open
        else:
            stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        if bundle.tty:  # the pty is all three; these are for the set-up's own errors
            return (stdin, os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC),
                    os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)), mine
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        mine[out_r], mine[err_r] = "stdout", "stderr"
        return (stdin, out_w, err_w), mine

    def _writer(self, record: dict, cdir: str):
        log = record.get("log") or {}
        if log.get("driver", "json-file") == "none":
            return None
        from rootless.runtime.logfile import Writer
        return Writer(os.path.join(cdir, record["id"] + "-json.log"), max_size=log.get("max_size"),
                      max_file=log.get("max_file") or 1, compress=bool(log.get("compress")))

    def _watch(self, w: Watched, mine: Dict[int, str], bundle) -> None:
        if w.started.master is not None:
            mine[w.started.master] = "stdout"
        for fd, stream in mine.items():
            if stream == "stdin":
                w.stdin_w = fd
                continue
            os.set_blocking(fd, False)
            w.streams[fd] = stream
            self.fds[fd] = w
            self.poll.register(fd, select.POLLIN)
        self.watched[w.cid] = w
        self.by_pid[w.started.pid] = w
        if w.started.keeper:
            self.keepers[w.started.keeper] = w

    def _output(self, w: Watched, fd: int) -> bool:
        """Log what ``fd`` has; whether it had anything (the stream is closed at EOF)."""
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: a pty whose every slave is closed
                _log("reading %s of %s: %s" % (w.streams.get(fd), w.cid[:12], e))
            data = b""
        if data:
            if w.writer is not None:
                w.writer.write(w.streams[fd], data)
                self._report_loss(w)
            self.attach.output(w.cid, w.streams[fd], data)
            return True
        self._close_stream(w, fd)
        return False

    def _drain(self, w: Watched, fd: int) -> None:
        """Read what is left, up to end of file or nothing more for now; then close."""
        while self._output(w, fd):
            pass
        if fd in w.streams:
            self._close_stream(w, fd)

    def _report_loss(self, w: Watched) -> None:
        """Leave the writer's first error, and its count of lost lines, where ``logs``
        finds them (runtime.logloss): rewritten only when the count changed."""
        writer = w.writer
        if writer.error is None or (writer.error, writer.lost_lines) == w.reported:
            return
        from rootless.runtime import logloss
        try:
            logloss.leave(w.containers.paths.run, w.cid, writer.error, writer.lost_lines, writer.lost_bytes)
        except OSError as e:
            _log("reporting the log errors of %s: %s" % (w.cid[:12], e))
        w.reported = (writer.error, writer.lost_lines)

    def _close_stream(self, w: Watched, fd: int) -> None:
        stream = w.streams.pop(fd, None)
        if w.writer is not None and stream:
            w.writer.eof(stream)
            self._report_loss(w)
        self.poll.unregister(fd)
        del self.fds[fd]
        os.close(fd)

    def _reap(self) -> None:
        from rootless.runtime import init, launch
        done = launch.reap_all()
        for pid, status in done:  # first: ending a container stops its companions
            if pid in self.companions:
                self._companion_ended(pid, status)
        for pid, status in done:
            w = self.keepers.pop(pid, None)
            if w is not None:
                if w.started is not None and w.started.keeper == pid:
                    w.started.keeper = 0  # reaped: its pid may be anyone's now
                continue
            w = self.by_pid.pop(pid, None)
            if w is not None:
                self._ended(w, init.code_of(status))

    def _companion_ended(self, pid: int, status: int) -> None:
        """A network process ended before its container: a crash, left in the record."""
        w, c = self.companions.pop(pid)
        c.pid = 0  # reaped: its pid may be anyone's now
        if w.started is None:
            return
        from rootless.runtime.start import companion_ended
        if status:
            _log("%s of %s ended (status %d)" % (c.name, w.cid[:12], status))
        companion_ended(w.containers, w.cid, c.name, status)

    def _ended(self, w: Watched, code: int) -> None:
        w.oom_killed = _release_cgroup(w.started, w.cid)  # before the keeper, which may hold its scope
        # The keeper first: with fuse-overlayfs it still holds the output pipes' write ends.
        if w.started.keeper:
            self.keepers.pop(w.started.keeper, None)
        w.started.end_keeper()
        if w.started.companions is not None:
            for pid in w.started.companions.pids():
                self.companions.pop(pid, None)
        w.started.end_companions()
        w.started = None
        for fd in list(w.streams):  # what it wrote just before the end is still queued
            self._drain(w, fd)
        if w.stdin_w is not None:
            os.close(w.stdin_w)
            w.stdin_w = None
        if w.writer is not None:
            w.writer.close()
            self._report_loss(w)
        w.code = code
        lived = time.monotonic() - w.began
        again = self._record_exit(w, code)
        self.attach.finish(w.cid)  # after the --rm removal: a `run -it --rm` waits for it
        if again:
            if lived >= 10:
                w.delay = 0.1  # it ran a while: start the backoff again, as Docker
            w.restart_at = time.monotonic() + w.delay
            w.delay = min(w.delay * 2, RESTART_MAX_DELAY)
        else:
            del self.watched[w.cid]

    def _record_exit(self, w: Watched, code: int) -> bool:
        """Write the exit into the record; whether the restart policy asks for another run."""
        from rootless.runtime import state
        decided = []

        def exited(r: dict) -> Optional[dict]:
            if r["status"] == state.REMOVING:
                return None  # rm is at work and will remove it
            again = restart_wanted(r.get("restart") or {}, code, r.get("restart_count", 0),
                                   r.get("stopped_by_user", False), r.get("restart_cancelled", False))
            decided.append(again)
            r.update(status=state.RESTARTING if again else state.EXITED, exit_code=code,
                     finished=time.time(), monitor=state.me() if again else None, pid=None,
                     ports=None, cgroup=None, oom_killed=w.oom_killed)
            return r
        try:
            record = w.containers.update(w.cid, exited)
        except OSError as e:
            _log("recording the exit of %s: %s" % (w.cid[:12], e))
            w.containers.leave_code(w.cid, code)
            record = None
        self.attach.ended(w.cid, code)  # the record says it: attached clients may read it
        if record is None or not decided:
            return False
        if not decided[0] and state.removed_at_exit(record):
            from rootless.runtime.start import remove
            w.containers.leave_code(w.cid, code)  # for a `wait` that comes late
            try:
                remove(w.containers.paths, record)
            except BaseException as e:
                _log("removing %s (--rm): %s" % (w.cid[:12], e))
        return decided[0]

    def _due_restarts(self) -> None:
        now = time.monotonic()
        for w in list(self.watched.values()):
            if w.restart_at is None or w.restart_at > now:
                continue
            w.restart_at = None
            try:
                self._launch(w, first=False)
            except BaseException as e:
                _log("restarting %s: %s: %s" % (w.cid[:12], type(e).__name__, e))
                if w.started is not None:
                    continue  # its user started it again meanwhile: it runs, watched
                self.watched.pop(w.cid, None)
                from rootless.errors import Conflict
                # Stopped or killed between two runs: the last run's code stands.
                self._give_up(w, w.code if isinstance(e, Conflict) else getattr(e, "exit_code", 125))

    def _give_up(self, w: Watched, code: int) -> None:
        from rootless.runtime import state

        def exited(r: dict) -> Optional[dict]:
            if r["status"] != state.RESTARTING:
                return None
            r.update(status=state.EXITED, exit_code=code, finished=time.time(), monitor=None, pid=None)
            return r
        try:
            w.containers.update(w.cid, exited)
        except OSError as e:
            _log("recording the end of %s: %s" % (w.cid[:12], e))


def _guarded(fn, *args) -> None:
    try:
        fn(*args)
    except Exception as e:
        import traceback
        _log("%s failed: %s: %s\n%s" % (fn.__name__, type(e).__name__, e, traceback.format_exc()))


def _lock(path: str) -> bool:
    """Whether we are the one monitor of this build: its lock is held for its whole life."""
    import fcntl
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return False
    _LOCKS.append(lock)
    return True


def _bind(path: str) -> socket.socket:
    try:
        os.unlink(path)  # a socket left by a monitor that was killed
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.bind(path)
    sock.listen(64)
    return sock


_LOCKS: List[int] = []


def _paths(message: dict):
    from rootless.paths import Paths
    return Paths(message["root"], message["run"], message.get("root_reason", ""))


def _log(message: str) -> None:
    try:
        sys.stderr.write("%s monitor %d: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), os.getpid(), message))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def main(path: str) -> None:
    """Entry point of a spawned monitor (see ``_spawn``)."""
    if os.fork():
        os._exit(0)
    for sig in (signals.SIGHUP, signals.SIGINT, signals.SIGPIPE):
        signals.signal(sig, signals.SIG_IGN)
    os.chdir("/")
    # What the containers' set-up needs, loaded once here: every container is forked
    # from this process, and after pivot_root nothing more can be imported.
    from rootless.runtime import config, init, keeper, launch, logfile, start, state  # noqa: F401
    from rootless.storage import rootfs  # noqa: F401
    try:
        Monitor(path).serve()
    except BaseException as e:
        _log("stopped by %s: %s" % (type(e).__name__, e))
        raise


def _release_cgroup(started, cid: str) -> bool:
    """Remove the container's cgroup after its end; whether the OOM killer ended one of its
    processes. A cgroup that cannot be removed is logged, not fatal to the monitor."""
    oom = started.release_cgroup()
    if started.cgroup_error:
        _log("removing the cgroup of %s: %s" % (cid[:12], started.cgroup_error))
    return oom
