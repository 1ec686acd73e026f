"""A running container's processes, read from the host's /proc: ``top``, and the pause
``commit`` makes.

A container's processes are those in its pid namespace: the one of its first process P
(the record's ``pid``, checked against its start time). Being the owner of the
container's user namespace, you may read every ``/proc/PID/ns/pid`` link there; nothing
is joined. ``top`` then does what Docker's daemon does: run the host's ``ps`` with the
options given (``-ef`` by default) and keep the rows whose PID column names one of those
processes (rows of threads, whose PID is ``-``, follow the process above them). Without a
``ps`` on the host, the columns of ``ps -ef`` are made from /proc.

The pause is SIGSTOP to each process (there is no freezer cgroup to ask) and SIGCONT after;
a stopped process's parent may notice, as a frozen one's does not.
"""

import os
import re
import subprocess
import time
from typing import List, Optional, Tuple

from rootless.errors import RootlessError, UsageError
from rootless.linux import signals


def pid_namespace(pid: int) -> Optional[str]:
    try:
        return os.readlink("/proc/%d/ns/pid" % pid)
    except OSError:
        return None


def container_pids(first: int) -> List[int]:
    """Every process in the pid namespace of ``first`` (sorted), ``first`` included."""
    wanted = pid_namespace(first)
    if wanted is None:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and pid_namespace(int(name)) == wanted:
            pids.append(int(name))
    return sorted(pids)


class Paused:
    """``with Paused(pids):`` the processes are stopped inside the block (none: no-op)."""

    def __init__(self, pids: List[int]):
        self.pids = pids

    def __enter__(self):
        for pid in self.pids:
            _signal(pid, signals.SIGSTOP)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not all(_state(p) in ("T", "t", "Z", "") for p in self.pids):
            time.sleep(0.005)
        return self

    def __exit__(self, *exc):
        for pid in self.pids:
            _signal(pid, signals.SIGCONT)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _state(pid: int) -> str:
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return ""


# -- top ---------------------------------------------------------------------------------------

_PID_ASSIGNMENT = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")


def check_ps_args(args: str) -> None:
    """Docker's check: ps options may not rename the PID column (``-o pid=PID`` is fine)."""
    for key, value in _PID_ASSIGNMENT.findall(args):
        if key != "pid":
            raise UsageError('specifying "%s=%s" is not allowed' % (key, value))


def top(pids: List[int], ps_args: str) -> Tuple[List[str], List[List[str]]]:
    """(titles, rows) of ``ps`` for the container's ``pids``."""
    ps_args = ps_args or "-ef"
    check_ps_args(ps_args)
    args = ps_args.split(" ")
    from rootless.linux.idmap import which
    ps = which("ps")
    if not ps:
        return own_ps(pids)
    output = _run([ps] + args + ["-q", ",".join(str(p) for p in pids)])
    if output is None:
        # some options (f) cannot be given with -q: ask for everything and filter
        output = _run([ps] + args, report=True)
    return parse_ps(output, pids)


def _run(argv: List[str], report: bool = False) -> Optional[str]:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode == 0:
        return proc.stdout.decode(errors="replace")
    if not report:
        return None
    why = (proc.stderr.decode(errors="replace").splitlines() or ["exit status %d" % proc.returncode])[0]
    raise RootlessError("ps: %s" % why)


def parse_ps(output: str, pids: List[int]) -> Tuple[List[str], List[List[str]]]:
    """Docker's reading of ps output (pure): the rows whose PID is one of ``pids``, each cut
    into as many fields as there are titles (the last takes the rest of the line)."""
    lines = output.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise RootlessError("Couldn't find PID field in ps output")
    at = titles.index("PID")
    rows, keep = [], False
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if not fields:
            continue
        if at >= len(fields):
            continue
        if fields[at] == "-":
            if keep:
                rows.append(_fit(fields, len(titles)))
            continue
        try:
            pid = int(fields[at])
        except ValueError:
            raise RootlessError("Unexpected pid '%s'" % fields[at])
        keep = pid in wanted
        if keep:
            rows.append(_fit(fields, len(titles)))
    return titles, rows


def _fit(fields: List[str], n: int) -> List[str]:
    return fields[:n - 1] + [" ".join(fields[n - 1:])]


def table(titles: List[str], rows: List[List[str]]) -> str:
    """Docker's layout (a tabwriter: columns at least 20 wide, 3 spaces of padding, the
    last column as it is)."""
    lines = [titles] + rows
    widths = [max(20, max(len(r[i]) for r in lines if i < len(r)) + 3) for i in range(len(titles) - 1)]
    out = []
    for r in lines:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths)] + r[-1:]
        out.append("".join(cells))
    return "\n".join(out) + "\n"


def own_ps(pids: List[int]) -> Tuple[List[str], List[List[str]]]:
    """``ps -ef``'s columns from /proc, where the host has no ps."""
    import pwd
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        boot = next(int(l.split()[1]) for l in f if l.startswith("btime"))
    rows = []
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                stat = f.read()
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").strip().decode(errors="replace")
            uid = os.stat("/proc/%d" % pid).st_uid
        except OSError:
            continue
        name = stat[stat.index(b"(") + 1:stat.rindex(b")")].decode(errors="replace")
        fields = stat[stat.rindex(b")") + 2:].split()
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        started = boot + int(fields[19]) / ticks
        cpu = (int(fields[11]) + int(fields[12])) // ticks
        stime = time.strftime("%H:%M" if time.time() - started < 86400 else "%b%d", time.localtime(started))
        tty = "?" if int(fields[4]) == 0 else "pts/%d" % (int(fields[4]) & 0xff)
        rows.append([user, str(pid), fields[1].decode(), "0", stime, tty,
                     "%02d:%02d:%02d" % (cpu // 3600, cpu // 60 % 60, cpu % 60), cmdline or "[%s]" % name])
    return ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], rows
