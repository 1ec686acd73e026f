"""Read-only image stores in scripts/bench: scenario s15 (`--only s15`).

What a cluster's shared store of the Debian test image puts on its file system, against
Apptainer's model of one SIF file per image (a squashfs of the image's flattened tree:
made here with mksquashfs, gzip, as Apptainer builds them, from the tree `rootless export`
gives), and the docker archive itself. Then `run --rm debian true` with the image in the
bench user's own store, in a store of the same user read with --image-store (kernel
overlayfs over its layers in place), and in a store root prepared (another user's:
fuse-overlayfs with squash_to_root), in one hyperfine invocation; all three with
--network host, on the work dir's file system. No podman row: this compares our store
models with each other and with a SIF's file count, not with another tool's start.
"""

import os
import shutil
import subprocess


def _tree(path):
    """(entries, apparent bytes, allocated bytes) of everything below ``path``."""
    entries = apparent = allocated = 0
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            st = os.lstat(os.path.join(dirpath, name))
            entries += 1
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return entries, apparent, allocated


def _file(path):
    st = os.stat(path)
    return 1, st.st_size, st.st_blocks * 512


def s15_stores(b, key="s15"):
    if not shutil.which("mksquashfs"):
        return {"missing": "mksquashfs is not installed (Debian's squashfs-tools)"}
    base = b.sdir(key)
    own, mine, roots, consumer = (os.path.join(base, n) for n in ("own", "store", "root-store", "consumer"))
    for d in (base, own, consumer):
        os.makedirs(d, exist_ok=True)
        os.chown(d, b.uid, b.gid)
    os.makedirs(mine, mode=0o755)
    os.chown(mine, b.uid, b.gid)
    os.chmod(mine, 0o755)
    os.makedirs(roots, mode=0o755)
    os.chmod(roots, 0o755)
    archive = os.path.join(b.images, "debian-docker.tar")
    for root in (own, mine):
        b.check_once(b.rl(root) + ["load", "-q", "-i", archive])
    subprocess.run(b.rl(roots) + ["load", "-q", "-i", archive], check=True, capture_output=True)  # as root
    # The SIF's content: the image's flattened tree, as root owns it in a SIF.
    tree = os.path.join(base, "tree")
    exported = os.path.join(base, "debian.tar")
    b.check_once(b.rl(own) + ["create", "--name", "sif-src", "debian", "true"])
    b.check_once(["sh", "-c", " ".join(b.rl(own) + ["export", "-o", exported, "sif-src"])])
    os.makedirs(tree)
    subprocess.run(["tar", "-xpf", exported, "-C", tree], check=True)
    sif = os.path.join(base, "debian.sqfs")
    subprocess.run(["mksquashfs", tree, sif, "-comp", "gzip", "-noappend", "-quiet", "-no-progress"],
                   check=True, capture_output=True)
    figures = {"store": _tree(mine), "tree": _tree(tree), "sif": _file(sif), "archive": _file(archive)}
    common = ["run", "--rm", "--network", "host", "debian", "true"]
    cmds = [("own store (overlay)", b.rl(own) + common, None),
            ("image store of the same user (overlay, in place)",
             b.rl(consumer) + ["--image-store", mine] + common, None),
            ("image store of root (fuse-overlayfs squash_to_root, in place)",
             b.rl(consumer) + ["--image-store", roots] + common, None)]
    for _, argv, _ in cmds:
        b.check_once(argv)
    info = b.check_once(b.rl(consumer) + ["--image-store", roots, "info", "--format",
                                           "{{range .ImageStores}}{{.Layers}}{{end}}"]).strip()
    results = b.hyperfine(key + "-run", cmds, warmup=3, runs=b.args.run_runs, rounds=3)
    return {"results": results, "figures": figures, "fs": b.describe_fs(base), "root_store_rung": info}


def summary(b, add, ms):
    from bench_targets import measured
    s15 = measured(b, add, "s15", "image stores")
    if not s15:
        return
    store, sif = s15["figures"]["store"], s15["figures"]["sif"]
    own, same, other = s15["results"]
    add("- image stores (s15): the Debian image's shared store is %s entries and %.0f MB, its SIF-style "
        "squashfs 1 file and %.0f MB; `run --rm debian true` %s from the own store, %s from another store "
        "of the same user, %s from root's (medians)."
        % ("{:,}".format(store[0]), store[2] / 1e6, sif[2] / 1e6, ms(own["median"]), ms(same["median"]),
           ms(other["median"])))


def section(b, add, timing_cells, cmdline):
    from bench_targets import cpu_table, open_section
    s15 = open_section(b, add, "s15", "13. Read-only image stores (s15)")
    if not s15:
        return
    add("The Debian test image (`debian-docker.tar`) on the work dir's file system: %s; load average %s "
        "at the start. What each way of keeping it puts on the file system a cluster would share "
        "(entries: files, directories and links; MB: allocated):" % (s15["fs"], s15["loadavg"]))
    add("")
    add("| kept as | entries | MB apparent | MB allocated |")
    add("|---|---|---|---|")
    names = (("store", "our image store (layers unpacked, records, blobs, index)"),
             ("sif", "one SIF-style squashfs of the flattened tree (mksquashfs, gzip)"),
             ("archive", "the docker archive (one tar, uncompressed layers)"),
             ("tree", "the flattened tree itself (what a copy per container writes)"))
    for k, label in names:
        n, apparent, allocated = s15["figures"][k]
        add("| %s | %s | %.1f | %.1f |" % (label, "{:,}".format(n), apparent / 1e6, allocated / 1e6))
    add("")
    add("`run --rm debian true`, one hyperfine invocation (3 warm-up runs per round, runs pooled from 3 "
        "rounds), the bench user, `--network host`; the store root prepared was read through %s:"
        % s15["root_store_rung"])
    add("")
    cpu_table(add, s15["results"], timing_cells)
    for r in s15["results"]:
        add("- %s: %s" % (r["label"], cmdline(r["argv"], b.w)))
    add("")
