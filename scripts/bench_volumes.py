"""The volume scenario of scripts/bench: s13, a build-like workload through a bind mount;
`--only s13`.

A module of its own (imported by scripts/bench), as bench_targets.py is. The workload is
the same command everywhere: the same static busybox (on the host, Debian's
busybox-static; in the containers, the busybox image made from that package) unpacks the
Debian image's big layer (164 MB, 8,727 entries) into a fresh directory, then checksums
every file in it (sha256sum through find | xargs), restoring no owners (``tar -o``: root
in a container would chown every entry, the user on the host cannot). Like with like:

- host:     the command itself, as rltest, in the work dir.
- rootless: `rootless run --rm --network host -v W:W busybox sh -c COMMAND`.
- podman:   `podman run --rm --network host -v W:W busybox sh -c COMMAND`.

The same user, the same file system (the work dir, ext4 here: both containers write
through their bind mount to it), the same network mode, overlay storage on both. Each
run's output directory is renamed aside before the next on the disk (deleting 9,000 files
before a timed run makes ext4 slow at random here: see Bench.aside) and deleted on tmpfs
(s13t, where copies kept aside would fill memory), and each round runs the three
in a new order (``rotated``), so every row saw the same load and none always came first.
"""

import os
import shlex

from bench_targets import _stores

BIND_TO_HOST = 1.1
# tar -o: no owners restored. As root (container root is root of its user namespace) tar
# would chown each of the 8,727 entries, which the host's tar, run as the user, does not:
# -o makes both do the same work.
WORKLOAD = ('set -e; mkdir "$1"; busybox tar -xof "$2" -C "$1"; cd "$1"; '
            'busybox find . -type f -print0 | busybox xargs -0 busybox sha256sum > /dev/null')


def s13_bind(b, key="s13", rounds=3, runs=6):
    """``s13t``: the same with the work dir, the layer and both stores on tmpfs: without the
    disk, whose allocator makes the unpacking swing from run to run, the ratio is the
    containers' own cost."""
    import shutil
    root, rl, pod = _stores(b, key)
    base = b.sdir(key)
    work = os.path.join(base, "work")
    os.makedirs(work, exist_ok=True)
    os.chown(work, b.uid, b.gid)
    out = os.path.join(work, "out")
    layer = b.layer["path"]
    if key.endswith("t"):
        layer = os.path.join(base, "layer.tar")
        shutil.copyfile(b.layer["path"], layer)
        os.chmod(layer, 0o644)
    shell = ["sh", "-c", WORKLOAD, "sh", out, layer]
    host = ["/bin/busybox"] + shell
    top = b.w if not key.endswith("t") else base
    mount = ["-v", "%s:%s" % (top, top)]  # the layer and the output, at the same paths inside
    run_rl = rl + ["run", "--rm", "--network", "host", "--storage-driver", "overlay"] + mount + ["busybox"] + shell
    run_pod = pod + ["run", "--rm", "--network", "host"] + mount + ["busybox"] + shell
    # On the disk the output is renamed aside (deleting it would slow the next run's
    # allocator: Bench.aside). tmpfs has no such allocator, and every copy kept aside
    # would stay in memory (170 MB a run, some 30 runs): there it is deleted.
    prep = b.aside(out) if not key.endswith("t") else "rm -rf %s" % shlex.quote(out)
    for argv in (host, run_rl, run_pod):
        b.as_user(["bash", "-c", prep])
        b.check_once(argv)
    cmds = [("host: busybox tar -x, sha256sum", host, prep),
            ("rootless run -v (bind mount)", run_rl, prep),
            ("podman run -v (bind mount)", run_pod, prep)]
    results = rotated(b, key + "-bind", cmds, runs, rounds)
    if key.endswith("t"):
        return {"results": results, "fs": b.describe_fs(work), "layer": b.layer}
    # The copy on first use: an anonymous volume over the Debian image's /usr (~6,700
    # files) filled from the image, used, and removed again with the container (--rm).
    debian = os.path.join(b.images, "debian-docker.tar")
    b.check_once(rl + ["load", "-i", debian])
    b.check_once(pod + ["load", "-q", "-i", debian])
    copy_rl = rl + ["run", "--rm", "--network", "host", "--storage-driver", "overlay", "-v", "/usr", "debian",
                    "/usr/bin/test", "-x", "/usr/bin/ls"]
    copy_pod = pod + ["run", "--rm", "--network", "host", "-v", "/usr", "debian", "/usr/bin/test", "-x", "/usr/bin/ls"]
    for argv in (copy_rl, copy_pod):
        b.check_once(argv)
    copy = b.hyperfine("s13-copyup", [("rootless run --rm -v /usr debian (copy-up)", copy_rl, None),
                                      ("podman run --rm -v /usr debian (copy-up)", copy_pod, None)],
                       warmup=1, runs=runs, rounds=rounds)
    return {"results": results, "copyup": copy, "fs": b.describe_fs(work), "layer": b.layer}


def rotated(b, name, cmds, runs, rounds):
    """Like ``b.hyperfine``, with the commands in a new order each round (host, rootless,
    podman; then rootless, podman, host; ...): hyperfine runs one command's runs before the
    next, and each run adds 9,000 files to the file system, whose allocator slows as they
    pile up (see Bench.aside), so a fixed order would favour whichever comes first."""
    import statistics
    pooled = {label: None for label, _, _ in cmds}
    for i in range(rounds):
        order = cmds[i % len(cmds):] + cmds[:i % len(cmds)]
        for r in b.hyperfine("%s-r%d" % (name, i + 1), order, warmup=1 if i == 0 else 0,
                             runs=max(2, -(-runs // rounds)), rounds=1):
            acc = pooled[r["label"]]
            if acc is None:
                pooled[r["label"]] = dict(r, round_medians=list(r["round_medians"]),
                                          users=[r["user"]] * len(r["times"]), systems=[r["system"]] * len(r["times"]))
            else:
                acc["times"] = acc["times"] + r["times"]
                acc["round_medians"].append(r["median"])
                acc["users"] += [r["user"]] * len(r["times"])
                acc["systems"] += [r["system"]] * len(r["times"])
    out = []
    for label, _, _ in cmds:
        r = pooled[label]
        t = r["times"]
        r.update(mean=statistics.mean(t), stddev=statistics.stdev(t) if len(t) > 1 else 0.0,
                 median=statistics.median(t), min=min(t), max=max(t), user=statistics.mean(r.pop("users")),
                 system=statistics.mean(r.pop("systems")))
        out.append(r)
    return out


def _ratios(s13):
    host, rl, pod = s13["results"]
    return host, rl, pod, rl["median"] / host["median"], rl["median"] / pod["median"]


def _verdict(ok):
    return "**met**" if ok else "**not met**"


def summary(b, add, ms):
    for key, where in (("s13t", "on tmpfs"), ("s13", "on the disk")):
        s = b.sections.get(key)
        if not s:
            continue
        host, rl, pod, to_host, to_pod = _ratios(s)
        add("- **bind-mount workload (%s, untar + sha256sum of the Debian layer through `-v`, %s): %s vs %s "
            "(host) and %s (podman): rootless/host = %.2f (target ≤ %.1f: %s), rootless/podman = %.2f (target ≤ 1: "
            "%s)** (medians)." % (key, where, ms(rl["median"]), ms(host["median"]), ms(pod["median"]), to_host,
                                  BIND_TO_HOST, _verdict(to_host <= BIND_TO_HOST), to_pod, _verdict(to_pod <= 1)))
    s13 = b.sections.get("s13")
    if not s13:
        return
    if s13.get("copyup"):
        crl, cpod = s13["copyup"]
        add("- Copy-up of a volume over the Debian image's /usr (s13): rootless %s vs podman %s, rootless/podman = "
            "%.2f (medians)." % (ms(crl["median"]), ms(cpod["median"]), crl["median"] / cpod["median"]))


def section(b, add, timing_cells, cmdline):
    if not (b.sections.get("s13") or b.sections.get("s13t")):
        return
    add("## 11. A build-like workload through a bind mount (bench_volumes.py, s13 and s13t)")
    add("")
    for key in ("s13t", "s13"):
        if b.sections.get(key):
            _section(b, add, timing_cells, cmdline, key)


def _section(b, add, timing_cells, cmdline, key):
    s13 = b.sections[key]
    host, rl, pod, to_host, to_pod = _ratios(s13)
    add("### %s" % ("11a. On tmpfs (s13t)" if key.endswith("t") else "11b. On the disk (s13)"))
    add("")
    add("The same static busybox unpacks the Debian image's big layer (%s, %d entries) into a fresh "
        "directory of the work dir and checksums every file in it: on the host, and in each tool's "
        "container through `-v WORKDIR:WORKDIR` (`--network host` on both, overlay storage on both). "
        "Work dir: %s; each run's output renamed aside before the next; each round in a new order of the "
        "three; load average "
        "%s at the start." % (_mb(s13["layer"].get("bytes")), s13["layer"].get("entries", 0), s13["fs"],
                              s13["loadavg"]))
    add("")
    add("| command | mean ± σ | median | min | CPU user / system (mean) | vs host | vs podman |")
    add("|---|---|---|---|---|---|---|")
    for r in (host, rl, pod):
        mean, med, mn = timing_cells(r)
        add("| %s | %s | %s | %s | %.2f s / %.2f s | %.2f | %.2f |"
            % (r["label"], mean, med, mn, r["user"], r["system"], r["median"] / host["median"],
               r["median"] / pod["median"]))
    add("")
    add("Targets: rootless/host %.2f (≤ %.1f: %s), rootless/podman %.2f (≤ 1: %s)."
        % (to_host, BIND_TO_HOST, _verdict(to_host <= BIND_TO_HOST), to_pod, _verdict(to_pod <= 1)))
    add("")
    for r in (host, rl, pod):
        add("- %s: %s" % (r["label"], cmdline(r["argv"], b.w)))
    add("- before each run: `%s`" % s13["results"][0]["prepare"])
    add("")
    copy = s13.get("copyup")
    if copy:
        crl, cpod = copy
        add("An anonymous volume over the Debian image's `/usr`, filled from the image on first use, and "
            "removed with the container (`--rm`), on each side:")
        add("")
        add("| command | mean ± σ | median | min | ratio |")
        add("|---|---|---|---|---|")
        for r in copy:
            mean, med, mn = timing_cells(r)
            add("| %s | %s | %s | %s | %.2f |" % (r["label"], mean, med, mn, r["median"] / cpod["median"]))
        add("")
        for r in copy:
            add("- %s: %s" % (r["label"], cmdline(r["argv"], b.w)))
        add("")


def _mb(size):
    return "%.0f MB" % (size / 1e6) if size else "?"
