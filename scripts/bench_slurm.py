"""A container's start inside a Slurm job step, in scripts/bench: scenario s14.

`srun -n1 true` against `srun -n1 rootless run --rm busybox true`, in one hyperfine
invocation, as the bench user through the one-node cluster of scripts/slurm-cluster (which
this starts, and stops after). What a job adds to a container's start is the difference of
the two; `run --rm busybox true` alone, outside a job, is in the same invocation, so the
step's own cost and the container's are both in the table. The run uses `--network host`
and overlay, as s9 does; the store is on the work dir's file system.
"""

import os
import subprocess

from bench_targets import cpu_table, open_section

SLURM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slurm-cluster")


def s14_slurm(b):
    key = "s14"
    base = b.sdir(key)
    root = os.path.join(base, "rootless")
    for d in (base, root):
        os.makedirs(d, exist_ok=True)
        os.chown(d, b.uid, b.gid)
    rl = b.rl(root)
    b.check_once(rl + ["load", "-i", os.path.join(b.images, "busybox-docker.tar")])
    up = subprocess.run(["bash", SLURM, "start"], capture_output=True, text=True)
    if up.returncode != 0:
        return {"missing": "no Slurm cluster: " + (up.stderr.strip().splitlines() or ["scripts/slurm-cluster failed"])[-1]}
    try:
        run = rl + ["run", "--rm", "--network", "host", "--storage-driver", "overlay", "busybox", "true"]
        bare, in_job = ["srun", "-n1", "true"], ["srun", "-n1"] + run
        for argv in (bare, in_job, run):
            b.check_once(argv)
        cmds = [("srun -n1 true", bare, None), ("srun -n1 rootless run --rm busybox true", in_job, None),
                ("rootless run --rm busybox true (no job)", run, None)]
        return {"results": b.hyperfine(key + "-srun", cmds, warmup=3, runs=b.args.run_runs, rounds=3),
                "fs": b.describe_fs(root)}
    finally:
        subprocess.run(["bash", SLURM, "stop"], capture_output=True)


def summary(b, add, ms):
    from bench_targets import measured
    s14 = measured(b, add, "s14", "container start in a Slurm job")
    if not s14:
        return
    srun, job, alone = s14["results"]
    add("- **container start in a Slurm job (s14): `srun -n1 run --rm busybox true` %s vs `srun -n1 true` %s: "
        "the container adds %s to a job step** (medians; `run --rm busybox true` outside a job: %s)."
        % (ms(job["median"]), ms(srun["median"]), ms(job["median"] - srun["median"]), ms(alone["median"])))


def section(b, add, timing_cells, cmdline):
    s14 = open_section(b, add, "s14", "12. A container's start in a Slurm job step (s14)")
    if not s14:
        return
    add("The one-node cluster of scripts/slurm-cluster (slurm-wlm, `proctrack/linuxproc`, no cgroup), "
        "the bench user submitting. Store: %s; load average %s at the start. One hyperfine invocation "
        "(3 warm-up runs per round, runs pooled from 3 rounds). The CPU columns of the srun rows are "
        "srun's own: the step runs under slurmd, not as hyperfine's child." % (s14["fs"], s14["loadavg"]))
    add("")
    cpu_table(add, s14["results"], timing_cells)
    srun, job, alone = s14["results"]
    add("The container's share of the step: %.1f ms (median of the step with it minus the step without); "
        "outside a job the same run takes %.1f ms." % ((job["median"] - srun["median"]) * 1e3, alone["median"] * 1e3))
    add("")
    for r in s14["results"]:
        add("- %s: %s" % (r["label"], cmdline(r["argv"], b.w)))
    add("")
