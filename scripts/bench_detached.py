"""Detached containers in scripts/bench: `run -d`, `stop`, `ps -a` and idle memory.

A module of its own (imported by scripts/bench) so that the bench script does not grow
past reading. Everything here runs each rootless command beside podman's in the same
hyperfine invocation, with the same user (rltest), the same storage driver (overlay on
the same file system, both stores under the bench's work dir) and the same network mode:
rootless containers share the host's network namespace, so podman gets `--network host`
(without it podman would also start slirp4netns/rootlessport and set up a namespace).

Why the measurements look like this:

- `run -d` is timed twice: with another container of ours running (the usual case: the
  per-user monitor is already up), and with none (the first `run -d` spawns the monitor;
  the prepare step waits 1 s so the previous monitor has exited). Each container is
  removed in the untimed prepare step of the next run.
- `stop` stops a container whose pid 1 is `sh` with a TERM trap, so both tools finish on
  the signal and never reach their 10 s SIGKILL.
- `ps -a` lists the same 50 containers on both sides: 25 created, 25 exited.
- Memory is PSS from /proc/PID/smaps_rollup, read as root, of every process that exists
  for the containers: ours are the monitor and its descendants; podman's are each conmon
  and its descendants, the user's pause process (podman's long-lived user namespace
  holder, shared by all of rltest's podman containers) and any catatonit, slirp4netns,
  rootlessport or pasta of rltest (with --network host there should be none). USS
  (private pages) is given too, since PSS shares library pages with whatever else runs.
"""

import os
import shlex
import statistics
import time

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
HELPERS = ("catatonit", "slirp4netns", "rootlessport", "pasta", "conmon")
IDLE_COUNTS = (1, 20)
PS_CREATED, PS_EXITED = 25, 25


def quiet(argv):
    """A shell snippet running argv with its output and failure ignored."""
    return shlex.join(argv) + " >/dev/null 2>&1 || true"


class Sides:
    """The rootless and podman argv prefixes of scenario s8, and how each removes all."""

    def __init__(self, b):
        self.b = b
        self.root = b.user_dir("s8", "rootless")
        b.user_dir("s8", "podman")
        self.rl = b.rl(self.root)
        self.pod = b.pod("s8")
        self.pod_run = self.pod + ["run", "--network", "host"]

    def remove_all(self):
        """Remove every container on both sides (podman: SIGKILL at once, as docker rm -f)."""
        ids = self.b.check_once(self.rl + ["ps", "-aq"]).split()
        if ids:
            self.b.check_once(self.rl + ["rm", "-f"] + ids)
        self.b.check_once(self.pod + ["rm", "-a", "-f", "-t", "0"])
        time.sleep(1)  # our monitor exits 0.5 s after its last container

    def both(self, args, pod_args=None):
        self.b.check_once(self.rl + args)
        self.b.check_once(self.pod + (pod_args or args))


def run_d_commands(s, name):
    rl_rm = quiet(s.rl + ["rm", "-f", name])
    pod_rm = quiet(s.pod + ["rm", "-f", "-t", "0", name])
    return rl_rm, pod_rm


def s8_detached(b):
    s = Sides(b)
    busybox = os.path.join(b.images, "busybox-docker.tar")
    s.b.check_once(s.rl + ["load", "-i", busybox])
    s.b.check_once(s.pod + ["load", "-q", "-i", busybox])
    s.remove_all()
    out = {"results": []}
    # A keep-alive container on each side: our monitor stays up between runs.
    s.b.check_once(s.rl + ["run", "-d", "--network", "host", "--name", "keep", "busybox", "sleep", "1000"])
    s.b.check_once(s.pod_run + ["-d", "--name", "keep", "busybox", "sleep", "1000"])
    rl_rm, pod_rm = run_d_commands(s, "bench-d")
    cmds = [("rootless run -d busybox sleep 1000 (monitor up)",
             s.rl + ["run", "-d", "--network", "host", "--name", "bench-d", "busybox", "sleep", "1000"], rl_rm),
            ("podman run -d --network host busybox sleep 1000",
             s.pod_run + ["-d", "--name", "bench-d", "busybox", "sleep", "1000"], pod_rm)]
    out["results"] += b.hyperfine("s8-run-d", cmds, warmup=1, runs=b.args.detached_runs, rounds=2)
    stop_prep = [rl_rm.replace("bench-d", "st") + "; " + shlex.join(
                     s.rl + ["run", "-d", "--network", "host", "--name", "st", "busybox", "sh", "-c", LOOP]) + " >/dev/null; sleep 0.3",
                 pod_rm.replace("bench-d", "st") + "; " + shlex.join(
                     s.pod_run + ["-d", "--name", "st", "busybox", "sh", "-c", LOOP]) + " >/dev/null; sleep 0.3"]
    cmds = [("rootless stop (sh traps TERM)", s.rl + ["stop", "st"], stop_prep[0]),
            ("podman stop (sh traps TERM)", s.pod + ["stop", "st"], stop_prep[1])]
    out["results"] += b.hyperfine("s8-stop", cmds, warmup=1, runs=b.args.detached_runs, rounds=2)
    s.remove_all()
    # No container of ours left: each run -d also starts the monitor.
    cmds = [("rootless run -d busybox sleep 1000 (monitor starts)",
             s.rl + ["run", "-d", "--network", "host", "--name", "bench-d", "busybox", "sleep", "1000"], rl_rm + "; sleep 1"),
            ("podman run -d --network host busybox sleep 1000 (same prepare)",
             s.pod_run + ["-d", "--name", "bench-d", "busybox", "sleep", "1000"], pod_rm + "; sleep 1")]
    out["results"] += b.hyperfine("s8-run-d-cold", cmds, warmup=0, runs=max(4, b.args.detached_runs // 2), rounds=2)
    s.remove_all()
    out["ps"] = s8_ps(b, s)
    s.remove_all()
    out["memory"] = s8_memory(b, s)
    s.remove_all()
    return out


def s8_ps(b, s):
    for i in range(PS_CREATED):
        s.b.check_once(s.rl + ["create", "--network", "host", "--name", "c%02d" % i, "busybox", "true"])
        s.b.check_once(s.pod + ["create", "--network", "host", "--name", "c%02d" % i, "busybox", "true"])
    for i in range(PS_EXITED):
        s.b.check_once(s.rl + ["run", "--name", "x%02d" % i, "busybox", "true"])
        s.b.check_once(s.pod_run + ["--name", "x%02d" % i, "busybox", "true"])
    listed = {}
    for label, argv in (("rootless", s.rl + ["ps", "-a"]), ("podman", s.pod + ["ps", "-a"])):
        lines = s.b.check_once(argv).strip().splitlines()
        listed[label] = len(lines) - 1
        if listed[label] != PS_CREATED + PS_EXITED:
            b.notes.append("`%s ps -a` listed %d containers, expected %d" % (label, listed[label], PS_CREATED + PS_EXITED))
    cmds = [("rootless ps -a (50 containers)", s.rl + ["ps", "-a"], None),
            ("podman ps -a (50 containers)", s.pod + ["ps", "-a"], None)]
    return {"results": b.hyperfine("s8-ps", cmds, warmup=3, runs=b.args.images_runs, rounds=3), "listed": listed}


# -- memory ------------------------------------------------------------------------------

def processes(uid):
    """pid -> (ppid, comm, cmdline) of every process of uid."""
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat("/proc/" + pid).st_uid != uid:
                continue
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        procs[int(pid)] = (int(stat.rsplit(")", 1)[1].split()[1]), comm, cmd)
    return procs


def descendants(procs, roots):
    children = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo += children.get(pid, [])
    return seen


def rollup(pid):
    """(PSS, USS) of pid in KiB, from smaps_rollup; (0, 0) if it is gone."""
    vals = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    vals[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        return 0, 0
    return vals.get("Pss", 0), vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0)


def pause_pid(uid):
    try:
        with open("/tmp/podman-run-%d/libpod/tmp/pause.pid" % uid) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def groups(b, s):
    """component -> pids, for both sides."""
    procs = processes(b.uid)
    monitors = [p for p, (_, _, cmd) in procs.items() if "rootless.runtime.monitor" in cmd and b.pyz in cmd]
    ours = descendants(procs, monitors)
    conmons = [p for p, (_, comm, cmd) in procs.items() if comm == "conmon" and s.pod[2] + "/" in cmd]
    pod_tree = descendants(procs, conmons)
    pause = pause_pid(b.uid)
    helpers = [p for p, (_, comm, _) in procs.items() if comm in HELPERS and comm != "conmon"]
    return {
        "rootless monitor": monitors,
        "rootless containers' processes": [p for p in ours if p not in monitors],
        "podman conmon": conmons,
        "podman containers' processes": [p for p in pod_tree if p not in conmons],
        "podman pause process": [pause] if pause in procs else [],
        "podman catatonit/slirp4netns/rootlessport/pasta": helpers,
    }


def sample(b, s):
    comp = {}
    for name, pids in groups(b, s).items():
        vals = [rollup(p) for p in pids]
        comp[name] = {"n": len(pids), "pss": sum(v[0] for v in vals), "uss": sum(v[1] for v in vals)}
    return comp


def s8_memory(b, s):
    rows, started = [], 0
    for n in IDLE_COUNTS:
        while started < n:
            s.b.check_once(s.rl + ["run", "-d", "--network", "host", "busybox", "sleep", "1000"])
            s.b.check_once(s.pod_run + ["-d", "busybox", "sleep", "1000"])
            started += 1
        time.sleep(2)
        samples = []
        for _ in range(3):
            samples.append(sample(b, s))
            time.sleep(1)
        # The median sample by the two totals' sum; its components as measured.
        samples.sort(key=lambda c: sum(v["pss"] for v in c.values()))
        rows.append({"containers": n, "components": samples[1]})
    return rows


def totals(comp, side):
    pss = sum(v["pss"] for k, v in comp.items() if k.startswith(side))
    uss = sum(v["uss"] for k, v in comp.items() if k.startswith(side))
    return pss / 1024, uss / 1024


def break_even(rows):
    """(our MiB per container, podman's, the count where the totals meet), from two rows."""
    if len(rows) < 2:
        return None
    (a, b) = rows[0], rows[-1]
    n = b["containers"] - a["containers"]
    ra, rb = totals(a["components"], "rootless")[0], totals(b["components"], "rootless")[0]
    pa, pb = totals(a["components"], "podman")[0], totals(b["components"], "podman")[0]
    ours, theirs = (rb - ra) / n, (pb - pa) / n
    if theirs <= ours:
        return None
    return ours, theirs, a["containers"] + (ra - pa) / (theirs - ours)


# -- the report ----------------------------------------------------------------------------

def summary(s8, add, ms):
    res = s8["results"]
    for i in (0, 2, 4):
        add("- **%s: %s vs %s, rootless/podman = %.2f** (medians)."
            % (res[i]["label"].replace("rootless ", ""), ms(res[i]["median"]), ms(res[i + 1]["median"]),
               res[i]["median"] / res[i + 1]["median"]))
    ps = s8["ps"]["results"]
    r = ps[0]["median"] / ps[1]["median"]
    add("- **ps -a with 50 containers: %s vs %s, rootless/podman = %.2f** (medians; %.2f by minimum, "
        "the figure least disturbed by other jobs); target ≤ 0.5: **%s**."
        % (ms(ps[0]["median"]), ms(ps[1]["median"]), r, ps[0]["min"] / ps[1]["min"], "met" if r <= 0.5 else "not met"))
    for row in s8["memory"]:
        (rp, ru), (pp, pu) = totals(row["components"], "rootless"), totals(row["components"], "podman")
        target = "; target ≤ podman's: **%s**" % ("met" if rp <= pp else "not met") if row["containers"] == 20 else ""
        add("- **PSS of %d idle detached container%s: %.1f MiB vs %.1f MiB, rootless/podman = %.2f**%s "
            "(USS %.1f vs %.1f MiB)."
            % (row["containers"], "s" if row["containers"] > 1 else "", rp, pp, rp / pp, target, ru, pu))
    even = break_even(s8["memory"])
    if even:
        add("  - Per extra idle container: rootless +%.2f MiB, podman +%.2f MiB; ours has the larger fixed "
            "cost (one Python monitor), so the totals cross at about %.0f containers (linear between the "
            "two measurements)." % even)


def section(b, add, timing_cells, cmdline):
    s8 = b.sections["s8"]
    res = s8["results"] + s8["ps"]["results"]
    add("## 8. Detached containers: `run -d`, `stop`, `ps -a`, idle memory")
    add("")
    add("Both sides as `rltest`, overlay stores in the same work dir, host network: rootless "
        "containers share the host's network namespace, so every podman `run`/`create` here has "
        "`--network host` (no slirp4netns, no rootlessport). Rows come in pairs measured in one "
        "hyperfine invocation; *ratio* is against the podman row below. Load average %s at the start."
        % s8["loadavg"])
    add("")
    add("- `run -d` (monitor up): another detached container runs on each side all along, so "
        "our per-user monitor is already up; the prepare step removes the previous run's container "
        "(`rm -f`, podman `rm -f -t 0`), not timed.")
    add("- `run -d` (monitor starts): no other container; the prepare step removes the previous one "
        "and sleeps 1 s, so our monitor (which exits 0.5 s after its last container) is gone and "
        "each timed run starts it; podman gets the same prepare (its pause process stays).")
    add("- `stop`: the container runs `sh -c %s`, started in the prepare step (plus 0.3 s); both "
        "tools end on SIGTERM, neither waits for its 10 s timeout." % shlex.quote(LOOP))
    add("- `ps -a`: the same %d created (`create busybox true`) and %d exited (`run busybox true`) "
        "containers on each side; listed: rootless %d, podman %d."
        % (PS_CREATED, PS_EXITED, s8["ps"]["listed"].get("rootless", -1), s8["ps"]["listed"].get("podman", -1)))
    add("")
    add("| command | mean ± σ | median | min | CPU user / system (mean) | ratio |")
    add("|---|---|---|---|---|---|")
    for i, r in enumerate(res):
        pod = res[i if i % 2 else i + 1]["median"]
        mean, med, mn = timing_cells(r)
        add("| %s | %s | %s | %s | %.2f s / %.2f s | %.2f |" % (r["label"], mean, med, mn, r["user"],
                                                           r["system"], r["median"] / pod))
    add("")
    for r in res:
        add("- %s: %s%s" % (r["label"], cmdline(r["argv"], b.w),
                            "  \n  prepare: `%s`" % r["prepare"] if r["prepare"] else ""))
    add("")
    memory_section(s8["memory"], add)


def memory_section(rows, add):
    add("### Host memory of idle detached containers (`busybox sleep 1000`)")
    add("")
    add("PSS and USS (private clean + dirty) summed from `/proc/PID/smaps_rollup`, read as root 2 s "
        "after the last start, the median of 3 samples 1 s apart. Rootless: its monitor and every "
        "descendant of it. Podman (`run -d --network host`): each container's conmon and its "
        "descendants, rltest's pause process (podman's user-namespace holder, one per user, also "
        "used by other podman commands of rltest on this machine) and any catatonit, slirp4netns, "
        "rootlessport or pasta of rltest. PSS splits shared pages among all their users, so it "
        "moves a little with whatever else runs (other test suites' Python processes share "
        "libpython's pages with our monitor); USS does not.")
    add("")
    add("| containers | component | processes | PSS | USS |")
    add("|---|---|---|---|---|")
    for row in rows:
        for name, v in row["components"].items():
            add("| %d | %s | %d | %.2f MiB | %.2f MiB |" % (row["containers"], name, v["n"], v["pss"] / 1024, v["uss"] / 1024))
        (rp, ru), (pp, pu) = totals(row["components"], "rootless"), totals(row["components"], "podman")
        add("| %d | **rootless total** | | **%.2f MiB** | **%.2f MiB** |" % (row["containers"], rp, ru))
        add("| %d | **podman total** | | **%.2f MiB** | **%.2f MiB** |" % (row["containers"], pp, pu))
        add("| %d | rootless/podman | | %.2f | %.2f |" % (row["containers"], rp / pp, ru / pu if pu else 0))
    add("")
