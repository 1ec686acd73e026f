"""The run and exec targets in scripts/bench: scenarios s9 (`run --rm busybox true`) and
s10 (`exec ID true`), each against its target, with `--only s9,s10` to run them alone.

A module of its own (imported by scripts/bench), as bench_detached.py is. Like with like:

- the same user (rltest), the same storage driver (overlay: rootless is told
  `--storage-driver overlay`, podman `--storage-driver overlay`), and both stores in the
  bench's work dir, so on the same file system (the table names it; nothing of this
  scenario is on tmpfs, on either side). podman's runroot is /tmp/rlbench-s9 (its
  runroot must be short), our run dir is /tmp/rootless-run-UID: /tmp for both.
- the same network mode: both are told `--network host` (else each starts slirp4netns or
  pasta and builds a namespace; the default networks are compared in bench_network.py).
- one hyperfine invocation per comparison, pooled over rounds, so a change in the
  machine's load lands on every command alike; `python3 -c pass` is in the same
  invocation as `run`, as the floor its 4x target is counted from.

Targets: run --rm busybox true at most 4x `python3 -c pass` and at most 0.35x podman's
`run --rm --network host`; `exec ID true` at most 0.3x `podman exec ID true`, each into a
detached `busybox sleep 1000` started before the timing. When this build has no `exec`
verb, s10 says so ("exec not available in this build") instead of failing.
"""

import os
import time

RUN_TO_PYTHON = 4.0
RUN_TO_PODMAN = 0.35
EXEC_TO_PODMAN = 0.3
NO_EXEC = "exec not available in this build"


def _stores(b, key):
    """Each tool's store for scenario ``key`` (in the work dir; on tmpfs for a key ending
    in t, as ``Bench.sdir`` says), busybox loaded."""
    base = b.sdir(key)
    for d in (base, os.path.join(base, "rootless"), os.path.join(base, "podman")):
        os.makedirs(d, exist_ok=True)
        os.chown(d, b.uid, b.gid)
    root = os.path.join(base, "rootless")
    busybox = os.path.join(b.images, "busybox-docker.tar")
    rl, pod = b.rl(root), b.pod(key)
    b.check_once(rl + ["load", "-i", busybox])
    b.check_once(pod + ["load", "-q", "-i", busybox])
    return root, rl, pod


def s9_run(b, key="s9"):
    """`run --rm busybox true` of both tools and the bare interpreter, one invocation.
    ``s9t``: the same with both stores on tmpfs, the setting of the figures the issue
    quoted: the disk's share (a container's files made and deleted on ext4, whose
    deletions here cost 0.1-0.5 ms each, see aside()) out of the ratio."""
    root, rl, pod = _stores(b, key)
    run_rl = rl + ["run", "--rm", "--network", "host", "--storage-driver", "overlay", "busybox", "true"]
    run_pod = pod + ["run", "--rm", "--network", "host", "busybox", "true"]
    for argv in (run_rl, run_pod):
        b.check_once(argv)
    cmds = [("python3 -c pass", [b.python, "-c", "pass"], None),
            ("rootless run --rm busybox true", run_rl, None),
            ("podman run --rm --network host busybox true", run_pod, None)]
    return {"results": b.hyperfine(key + "-run", cmds, warmup=3, runs=b.args.run_runs, rounds=3),
            "fs": b.describe_fs(root)}


def has_exec(b):
    """Whether this build's CLI has the `exec` verb (its --help answers)."""
    r = b.as_user(b.rl(os.path.join(b.w, "s10", "rootless")) + ["exec", "--help"], check=False, capture=True)
    return r.returncode == 0 and "usage" in (r.stdout or "").lower()


def s10_exec(b):
    """`exec ID true` into a detached `busybox sleep 1000` on each side."""
    b.user_dir("s10")
    if not has_exec(b):
        return {"missing": NO_EXEC}
    root, rl, pod = _stores(b, "s10")
    started = []
    try:
        rl_id = b.check_once(rl + ["run", "-d", "--network", "host", "--storage-driver", "overlay", "busybox", "sleep", "1000"]).strip()
        started.append(rl + ["rm", "-f", rl_id])
        pod_id = b.check_once(pod + ["run", "-d", "--network", "host", "busybox", "sleep", "1000"]).strip()
        started.append(pod + ["rm", "-f", "-t", "0", pod_id])
        ex_rl, ex_pod = rl + ["exec", rl_id, "true"], pod + ["exec", pod_id, "true"]
        for argv in (ex_rl, ex_pod):
            b.check_once(argv)
        cmds = [("rootless exec ID true", ex_rl, None), ("podman exec ID true", ex_pod, None)]
        return {"results": b.hyperfine("s10-exec", cmds, warmup=3, runs=b.args.run_runs, rounds=3),
                "fs": b.describe_fs(root)}
    finally:
        for argv in started:
            b.as_user(argv, check=False, capture=True)
        time.sleep(1)  # our monitor exits 0.5 s after its last container


def _verdict(ratio, target):
    return "**met**" if ratio <= target else "**not met**"


def run_ratios(s9):
    by = {r["label"]: r for r in s9["results"]}
    py, rl = by["python3 -c pass"], by["rootless run --rm busybox true"]
    pod = by["podman run --rm --network host busybox true"]
    return py, rl, pod, rl["median"] / py["median"], rl["median"] / pod["median"]


def summary(b, add, ms):
    """The summary lines of s9, s9t and s10 (each section only when it ran)."""
    for key, where in (("s9", "stores on disk"), ("s9t", "stores on tmpfs")):
        s9 = b.sections.get(key)
        if not s9:
            continue
        py, rl, pod, to_py, to_pod = run_ratios(s9)
        add("- **run --rm busybox true (%s, %s): %s vs %s (`python3 -c pass`) and %s (podman --network "
            "host): run/python = %.2f (target ≤ %.0f: %s), run/podman = %.2f (target ≤ %.2f: %s)** "
            "(medians of one hyperfine invocation; by minimum %.2f and %.2f)."
            % (key, where, ms(rl["median"]), ms(py["median"]), ms(pod["median"]), to_py, RUN_TO_PYTHON,
               _verdict(to_py, RUN_TO_PYTHON), to_pod, RUN_TO_PODMAN, _verdict(to_pod, RUN_TO_PODMAN),
               rl["min"] / py["min"], rl["min"] / pod["min"]))
    s10 = b.sections.get("s10")
    if s10 and s10.get("missing"):
        add("- exec ID true (s10): %s." % s10["missing"])
    elif s10:
        rl, pod = s10["results"]
        ratio = rl["median"] / pod["median"]
        add("- **exec ID true (s10): %s vs %s (podman exec), rootless/podman = %.2f (target ≤ %.1f: %s)** "
            "(medians; by minimum %.2f)." % (ms(rl["median"]), ms(pod["median"]), ratio, EXEC_TO_PODMAN,
                                            _verdict(ratio, EXEC_TO_PODMAN), rl["min"] / pod["min"]))


def measured(b, add, key, what):
    """A scenario's results for the summary, or None (with a line saying why when it ran
    but could not measure)."""
    found = b.sections.get(key)
    if found and found.get("missing"):
        add("- %s (%s): not measured, %s." % (what, key, found["missing"]))
        return None
    return found


def open_section(b, add, key, title):
    """A report section's heading; the scenario's results, or None when it did not run or
    was not measured (its reason is then written under the heading)."""
    found = b.sections.get(key)
    if not found:
        return None
    add("## " + title)
    add("")
    if found.get("missing"):
        add("Not measured: %s." % found["missing"])
        add("")
        return None
    return found


def cpu_table(add, results, timing_cells):
    """A table of hyperfine results with their CPU times (this module's, bench_slurm's)."""
    add("| command | mean ± σ | median | min | CPU user / system (mean) |")
    add("|---|---|---|---|---|")
    for r in results:
        mean, med, mn = timing_cells(r)
        add("| %s | %s | %s | %s | %.1f ms / %.1f ms |" % (r["label"], mean, med, mn, r["user"] * 1e3, r["system"] * 1e3))
    add("")


def section(b, add, timing_cells, cmdline):
    """Section 9 of the report: the two target scenarios' tables."""
    s10 = b.sections.get("s10")
    if not (b.sections.get("s9") or b.sections.get("s9t") or s10):
        return
    add("## 9. Targets: `run --rm busybox true` and `exec ID true`")
    add("")
    add("Same user, same storage driver (overlay on both sides), both stores on one file system "
        "(the work dir's; for 9a-tmpfs both on tmpfs), both tools with `--network host`. Each "
        "table is one hyperfine invocation (3 warm-up runs per round, runs pooled from 3 rounds), "
        "so every row saw the same load.")
    add("")
    for key, title in (("s9", "9a. `run --rm busybox true` (s9)"),
                       ("s9t", "9a-tmpfs. The same with both stores on tmpfs (s9t)")):
        s9 = b.sections.get(key)
        if not s9:
            continue
        py, rl, pod, to_py, to_pod = run_ratios(s9)
        add("### " + title)
        add("")
        add("Stores: %s; load average %s at the start." % (s9["fs"], s9["loadavg"]))
        add("")
        cpu_table(add, s9["results"], timing_cells)
        add("| ratio (medians) | value | target | |")
        add("|---|---|---|---|")
        add("| run / `python3 -c pass` | %.2f (by minimum %.2f) | ≤ %.0f | %s |"
            % (to_py, rl["min"] / py["min"], RUN_TO_PYTHON, _verdict(to_py, RUN_TO_PYTHON)))
        add("| run / podman run --network host | %.2f (by minimum %.2f) | ≤ %.2f | %s |"
            % (to_pod, rl["min"] / pod["min"], RUN_TO_PODMAN, _verdict(to_pod, RUN_TO_PODMAN)))
        add("")
        for r in s9["results"]:
            add("- %s: %s" % (r["label"], cmdline(r["argv"], b.w)))
        add("")
    if s10:
        add("### 9b. `exec ID true` into a detached `busybox sleep 1000` (s10)")
        add("")
        if s10.get("missing"):
            add("Not measured: %s (`rootless exec --help` does not answer)." % s10["missing"])
            add("")
            return
        rl, pod = s10["results"]
        ratio = rl["median"] / pod["median"]
        add("Stores: %s; load average %s at the start. Each side's container was started (`run -d`) "
            "before the timing and removed after it." % (s10["fs"], s10["loadavg"]))
        add("")
        add("| command | mean ± σ | median | min | CPU user / system (mean) | ratio | target | |")
        add("|---|---|---|---|---|---|---|---|")
        for r in (rl, pod):
            mean, med, mn = timing_cells(r)
            add("| %s | %s | %s | %s | %.1f ms / %.1f ms | %.2f | %s | %s |"
                % (r["label"], mean, med, mn, r["user"] * 1e3, r["system"] * 1e3, r["median"] / pod["median"],
                   "≤ %.1f" % EXEC_TO_PODMAN if r is rl else "", _verdict(ratio, EXEC_TO_PODMAN) if r is rl else ""))
        add("")
        for r in (rl, pod):
            add("- %s: %s" % (r["label"], cmdline(r["argv"], b.w)))
        add("")
