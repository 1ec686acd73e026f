"""System verbs: version, info, system df."""

import os
import sys

from rootless import fsutil

from rootless import __version__
from rootless.cli import out


def register(sub) -> None:
    p = sub.add_parser("version", help="show the version")
    p.add_argument("-f", "--format", help="a Go-like template, or json")
    p.set_defaults(handler=cmd_version)
    group = sub.add_parser("system", help="manage rootless itself")
    system = group.add_subparsers(dest="system_command", metavar="COMMAND", parser_class=type(group))
    for parent in (sub, system):
        p = parent.add_parser("info", help="show where data lives and which features work here")
        p.add_argument("-f", "--format", help="a Go-like template, or json")
        p.add_argument("--probe", action="store_true", help="probe again instead of using the cached answers")
        p.set_defaults(handler=cmd_info)
    p = system.add_parser("reset", help="remove every image and all data under the storage root")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=cmd_reset)
    p = system.add_parser("df", help="show disk usage")
    p.add_argument("-v", "--verbose", action="store_true", help="show every image")
    p.add_argument("--format", help="table, json, or a Go-like template")
    p.set_defaults(handler=cmd_df)
    p = system.add_parser("prune", help="remove unused data: stopped containers, unused images, "
                          "partial downloads, abandoned work (and anonymous volumes with --volumes)")
    p.add_argument("-a", "--all", action="store_true", help="remove all unused images, not just dangling ones")
    p.add_argument("--volumes", action="store_true", help="prune anonymous volumes")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help="label=..., until=...")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.set_defaults(handler=cmd_prune)
    p = system.add_parser("check", help="check the storage root (read-only unless --repair)")
    p.add_argument("--repair", action="store_true", help="remove what is provably unused: orphan layers and "
                   "blobs, abandoned work in tmp/")
    p.set_defaults(handler=cmd_check)


def _machine() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def version_info() -> dict:
    return {"Client": {
        "Version": __version__,
        "Python": "%d.%d.%d" % sys.version_info[:3],
        "Os": "linux", "Arch": _machine(),
        "Executable": os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "",
    }}


def cmd_version(ctx, args):
    info = version_info()
    if args.format:
        out(_json(info) if args.format == "json" else _fmt().render(args.format, info, strict=True))
        return 0
    c = info["Client"]
    out("Client:\n Version:     %s\n Python:      %s\n OS/Arch:     %s/%s\n Executable:  %s"
        % (c["Version"], c["Python"], c["Os"], c["Arch"], c["Executable"]))
    return 0


def system_info(ctx, probe_again: bool = False) -> dict:
    """Docker's Info (the keys ``docker info --format '{{json .}}'`` has, with what rootless
    knows; Docker's zero value for what it cannot), and rootless's own keys after them."""
    from rootless import host, probes
    from rootless import paths as paths_mod
    p = ctx.paths()
    probed = dict(probes.collect(p, refresh=probe_again))
    probed["network"] = _network_probe()  # not cached: it depends on PATH, and costs a PATH walk
    counts = _container_counts(p)
    store = ctx.store()
    images = store.images() if os.path.exists(p.images_index) or p.image_stores else []
    fs = paths_mod.fs_type(p.root)
    driver = (probed.get("rootfs") or {}).get("choice", "")
    from rootless.cgroups import detect
    cgroups = detect.detect()
    can = set(cgroups.controllers)
    release = host.os_release()
    registry, registry_warning = _registry_config()
    info = {
        "ID": host.engine_id(p.root),
        "Containers": sum(counts), "ContainersRunning": counts[0], "ContainersPaused": counts[1],
        "ContainersStopped": counts[2], "Images": len(images),
        "Driver": driver,
        "DriverStatus": [["Backing Filesystem", host.backing_fs(fs)]] + ([["userxattr", "true"]] if driver == "overlay" else []),
        "MemoryLimit": "memory" in can, "SwapLimit": "memory" in can, "CpuCfsPeriod": "cpu" in can,
        "CpuCfsQuota": "cpu" in can, "CPUShares": "cpu" in can, "CPUSet": "cpuset" in can,
        "PidsLimit": "pids" in can, "IPv4Forwarding": _ip_forward(),
        "Debug": bool(ctx.debug), "OomKillDisable": False,
        "LoggingDriver": "json-file", "CgroupDriver": cgroups.strategy, "CgroupVersion": cgroups.version,
        "KernelVersion": os.uname().release,
        "OperatingSystem": release.get("PRETTY_NAME", ""), "OSVersion": release.get("VERSION_ID", ""),
        "OSType": "linux", "Architecture": os.uname().machine,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry,
        "NCPU": host.cpus(), "MemTotal": host.mem_total(),
        "DockerRootDir": p.root,
        "HttpProxy": _env_any("HTTP_PROXY", "http_proxy"), "HttpsProxy": _env_any("HTTPS_PROXY", "https_proxy"),
        "NoProxy": _env_any("NO_PROXY", "no_proxy"),
        "Name": os.uname().nodename, "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": __version__, "LiveRestoreEnabled": False,
        "SecurityOptions": host.security_options((probed.get("idmap") or {}).get("choice", "")),
        "Warnings": _warnings(probed, cgroups, registry_warning),
        # rootless's own
        "Version": __version__,
        "Python": "%d.%d.%d" % sys.version_info[:3],
        "StorageRoot": p.root,
        "StorageRootFilesystem": fs,
        "StorageRootReason": p.root_reason,
        "RunDir": p.run,
        "ImageStores": _image_stores(store, probed) if p.image_stores else [],
        "Uid": os.getuid(),
        "Network": _network_info(probed["network"]),
        "Cgroups": cgroups.as_dict(),
        "Probes": probed,
    }
    return info


def _image_stores(store, probed: dict) -> list:
    """Each read-only image store: where, its file system, how containers use its layers."""
    result = []
    for root, index in store.shared_indexes():  # read once for images above too
        answer = (probed.get("image_stores") or {}).get(root) or {}
        result.append({"Path": root, "Filesystem": answer.get("fs", ""), "Images": len(index),
                       "Layers": answer.get("choice", ""), "Reason": answer.get("reason", "")})
    return result


def _container_counts(paths) -> "tuple[int, int, int]":
    """(running, paused, stopped), Docker's way: restarting counts as running."""
    from rootless.runtime import state
    from rootless.runtime.start import remove
    running = paused = stopped = 0
    for record in state.Containers(paths).all(lambda r: remove(paths, r)):
        if record["status"] in (state.RUNNING, state.RESTARTING):
            running += 1
        elif record["status"] == state.PAUSED:
            paused += 1
        else:
            stopped += 1
    return running, paused, stopped


def _registry_config() -> "tuple[dict, str]":
    """Docker's RegistryConfig from registries.json, and a warning if it cannot be read."""
    from rootless.errors import RootlessError
    from rootless.image import regconfig
    try:
        config = regconfig.RegistryConfig.load()
    except RootlessError as e:
        config, problem = regconfig.RegistryConfig(), str(e)
    else:
        problem = ""
    indexes = {regconfig.DOCKER_HUB: {"Name": regconfig.DOCKER_HUB, "Mirrors": list(config.registry_mirrors),
                                      "Secure": True, "Official": True}}
    for entry in config.insecure_registries:
        if "/" not in entry:
            indexes[entry] = {"Name": entry, "Mirrors": [], "Secure": False, "Official": False}
    return {"InsecureRegistryCIDRs": [e for e in config.insecure_registries if "/" in e],
            "IndexConfigs": indexes, "Mirrors": list(config.registry_mirrors)}, problem


def _warnings(probed: dict, cgroups: dict, registry_problem: str) -> list:
    """Docker's WARNING lines, for what this host lacks (the remedies are in our section)."""
    warnings = []
    idmap = probed.get("idmap") or {}
    if idmap.get("choice") != "subuid":
        warnings.append("WARNING: Id mapping is %s: %s" % (idmap.get("choice", "unknown"), idmap.get("reason", "")))
    rootfs = probed.get("rootfs") or {}
    if rootfs.get("choice") == "copy":
        warnings.append("WARNING: Rootfs driver is copy: %s" % rootfs.get("reason", ""))
    if cgroups.strategy == "none":
        warnings.append("WARNING: No cgroup limits: %s" % cgroups.problem)
    network = probed.get("network") or {}
    if network.get("choice") == "host":
        warnings.append("WARNING: No private network by default: %s" % network.get("reason", ""))
    if registry_problem:
        warnings.append("WARNING: %s" % registry_problem)
    return warnings


def _network_probe() -> dict:
    from rootless.network import modes
    choice, reason, remedy = modes.probe()
    return {"choice": choice, "reason": reason, "remedy": remedy}


def _network_info(probed: dict) -> dict:
    """The default network and the helpers found (``network.modes``)."""
    from rootless.network import modes
    return {"Default": probed["choice"], "Helpers": {h: modes.find(h) or "" for h in modes.HELPERS},
            "Tun": modes.tun_problem() or "usable"}


def _env_any(*names) -> str:
    return next((os.environ[n] for n in names if os.environ.get(n)), "")


def _ip_forward() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def cmd_info(ctx, args):
    info = system_info(ctx, args.probe)
    if args.format:
        out(_json(info) if args.format == "json" else _fmt().render(args.format, info, strict=True))
        return 0
    out("\n".join(info_lines(info)))
    if info["Warnings"]:
        sys.stdout.flush()
        sys.stderr.write("".join(w + "\n" for w in info["Warnings"]))
    return 0


def info_lines(info: dict) -> list:
    """Docker's layout (Client, Server; its warnings go to stderr), then rootless's own."""
    return (["Client:", " Version:    %s" % info["Version"], " Python:     %s" % info["Python"],
             " Debug Mode: %s" % _bool(info["Debug"]), "", "Server:"]
            + _server_lines(info) + _registry_lines(info["RegistryConfig"])
            + [" Live Restore Enabled: %s" % _bool(info["LiveRestoreEnabled"]), "", "Rootless:",
               " Storage root: %s" % info["StorageRoot"],
               "  File system: %s" % info["StorageRootFilesystem"],
               "  Chosen: %s" % info["StorageRootReason"],
               " Run dir: %s" % info["RunDir"]]
            + _store_lines(info["ImageStores"]) + [" User: uid %d" % info["Uid"]]
            + _ladder_lines(info["Probes"]) + _cgroup_lines(info["Cgroups"]))


def _store_lines(stores: list) -> list:
    lines = []
    for store in stores:
        lines += [" Image store (read-only): %s" % store["Path"],
                  "  File system: %s" % store["Filesystem"], "  Images: %d" % store["Images"],
                  "  Layers used by: %s" % store["Layers"], "  Why: %s" % store["Reason"]]
    return lines


def _server_lines(info: dict) -> list:
    """The Server section of docker/cli's prettyPrintServerInfo, as far as Experimental."""
    from rootless.units import binary_size
    lines = [" Containers: %d" % info["Containers"], "  Running: %d" % info["ContainersRunning"],
             "  Paused: %d" % info["ContainersPaused"], "  Stopped: %d" % info["ContainersStopped"],
             " Images: %d" % info["Images"], " Server Version: %s" % info["ServerVersion"],
             " Storage Driver: %s" % info["Driver"]]
    lines += ["  %s: %s" % (k, v) for k, v in info["DriverStatus"]]
    lines += [" Logging Driver: %s" % info["LoggingDriver"], " Cgroup Driver: %s" % info["CgroupDriver"],
              " Cgroup Version: %s" % info["CgroupVersion"], " Security Options:"]
    for option in info["SecurityOptions"]:  # "name=seccomp,profile=builtin": the name, then the rest
        for i, pair in enumerate(option.split(",")):
            key, _, value = pair.partition("=")
            lines.append("  %s" % value if i == 0 else "   %s: %s" % (key.title(), value))
    lines += [" Kernel Version: %s" % info["KernelVersion"], " Operating System: %s" % info["OperatingSystem"],
              " OSType: %s" % info["OSType"], " Architecture: %s" % info["Architecture"],
              " CPUs: %d" % info["NCPU"], " Total Memory: %s" % binary_size(info["MemTotal"]),
              " Name: %s" % info["Name"], " ID: %s" % info["ID"],
              " Docker Root Dir: %s" % info["DockerRootDir"], " Debug Mode: %s" % _bool(info["Debug"])]
    for key, title in (("HttpProxy", "HTTP Proxy"), ("HttpsProxy", "HTTPS Proxy"), ("NoProxy", "No Proxy")):
        if info[key]:
            lines.append(" %s: %s" % (title, info[key]))
    return lines + [" Experimental: %s" % _bool(info["ExperimentalBuild"])]


def _registry_lines(registry: dict) -> list:
    """Insecure registries (hosts, then networks) and mirrors, each only when there are any."""
    insecure = [i["Name"] for i in registry["IndexConfigs"].values() if not i["Secure"]]
    insecure += registry["InsecureRegistryCIDRs"]
    lines = [" Insecure Registries:"] + ["  " + name for name in insecure] if insecure else []
    if registry["Mirrors"]:
        lines += [" Registry Mirrors:"] + ["  " + m for m in registry["Mirrors"]]
    return lines


def _bool(value: bool) -> str:
    return "true" if value else "false"


def disk_usage(store) -> list:
    from rootless.streams import human_size
    images = store.images(shared=False) if os.path.exists(store.paths.images_index) else []
    used = store.usage().images()
    sizes, active_layers = {}, set()
    for rec in images:
        for d in rec.layers:
            if d not in sizes:
                meta = store.layer_info(d)
                sizes[d] = meta.content_size if meta else 0
            if rec.id in used:
                active_layers.add(d)
    total = sum(sizes.values())
    reclaim = total - sum(sizes[d] for d in active_layers)
    pct = " (%d%%)" % (100 * reclaim // total) if total else ""
    zero = {"TotalCount": 0, "Active": 0, "Size": "0B", "Reclaimable": "0B"}
    rows = [{"Type": "Images", "TotalCount": len(images), "Active": len([r for r in images if r.id in used]),
             "Size": human_size(total), "Reclaimable": human_size(reclaim) + pct}]
    from rootless.runtime import state
    from rootless.storage.volumes import Volumes
    paths = store.paths
    records = state.Containers(paths).all()
    sizes = _writable_size(paths)
    active = [r for r in records if r["status"] in state.ACTIVE]
    csize = {r["id"]: sizes(r) for r in records}
    ctotal = sum(csize.values())
    creclaim = sum(csize[r["id"]] for r in records if r not in active)
    rows.append({"Type": "Containers", "TotalCount": len(records), "Active": len(active), "Size": human_size(ctotal),
                 "Reclaimable": human_size(creclaim) + (" (%d%%)" % (100 * creclaim // ctotal) if ctotal else "")})
    volumes = Volumes(paths)
    users = volumes.users(records)
    vsize = {v["Name"]: fsutil.tree_size(volumes.dir(v["Name"])) for v in volumes.all()}
    vtotal = sum(vsize.values())
    vreclaim = sum(s for name, s in vsize.items() if not users.get(name))
    rows.append({"Type": "Local Volumes", "TotalCount": len(vsize), "Active": len([n for n in vsize if users.get(n)]),
                 "Size": human_size(vtotal),
                 "Reclaimable": human_size(vreclaim) + (" (%d%%)" % (100 * vreclaim // vtotal) if vtotal else "")})
    rows.append(dict(zero, Type="Build Cache"))
    # Ours, shown when they hold anything: what `system prune` frees besides Docker's four.
    for kind, directory in (("Partial Downloads", paths.downloads), ("Abandoned Work", paths.tmp)):
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            names = []
        size = sum(fsutil.tree_size(os.path.join(directory, n)) for n in names)
        if names and size:
            rows.append({"Type": kind, "TotalCount": len(names), "Active": 0, "Size": human_size(size),
                         "Reclaimable": human_size(size)})
    return rows


def cmd_df(ctx, args):
    if args.verbose and not args.format:
        out(verbose_usage(ctx.store()))
        return 0
    rows = disk_usage(ctx.store())
    out(_fmt().emit(rows, args.format, [("TYPE", "Type"), ("TOTAL", "TotalCount"), ("ACTIVE", "Active"),
                                     ("SIZE", "Size"), ("RECLAIMABLE", "Reclaimable")]))
    return 0


def verbose_usage(store) -> str:
    """``system df -v``: Docker's four listings (images, containers, local volumes, build
    cache), then ours when they hold anything."""
    from rootless.cli import format as fmt
    from rootless.runtime import state
    from rootless.storage.volumes import Volumes
    from rootless.streams import human_size
    paths = store.paths
    records = state.Containers(paths).all()
    images = store.images(shared=False) if os.path.exists(paths.images_index) else []
    sizes, count = {}, {}
    for rec in images:
        for d in rec.layers:
            if d not in sizes:
                meta = store.layer_info(d)
                sizes[d] = meta.content_size if meta else 0
            count[d] = count.get(d, 0) + 1
    per_image = {}
    for r in records:
        per_image[r.get("image_id")] = per_image.get(r.get("image_id"), 0) + 1
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"]]
    for rec in images:
        total = sum(sizes[d] for d in rec.layers)
        shared = sum(sizes[d] for d in rec.layers if count[d] > 1)
        from rootless.image.reference import familiar
        for tag in rec.repo_tags or ["<none>:<none>"]:
            repo, _, name = (familiar(tag) if rec.repo_tags else tag).rpartition(":")
            created = fmt.since(rec.created) if getattr(rec, "created", None) else ""
            rows.append([repo, name, rec.id[7:19], created, human_size(total), human_size(shared),
                         human_size(total - shared), str(per_image.get(rec.id, 0))])
    text = ["Images space usage:", "", fmt.table(rows), ""]
    volumes = Volumes(paths)
    users = volumes.users(records)
    size_of = _writable_size(paths)
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"]]
    for r in records:
        local = sum(1 for m in r.get("mounts") or () if m.get("Type") == "volume")
        command = " ".join(r.get("command") or [])
        rows.append([r["id"][:12], r.get("image", ""), fmt.go_quote(fmt.ellipsis(command, 20)), str(local),
                     human_size(size_of(r)), _ago(r.get("created")),
                     r["status"], r["name"]])
    text += ["Containers space usage:", "", fmt.table(rows), ""]
    rows = [["VOLUME NAME", "LINKS", "SIZE"]]
    for v in volumes.all():
        rows.append([v["Name"], str(len(users.get(v["Name"], []))), human_size(fsutil.tree_size(volumes.dir(v["Name"])))])
    text += ["Local Volumes space usage:", "", fmt.table(rows), "", "Build cache usage: 0B"]
    for kind, directory in (("Partial downloads", paths.downloads), ("Abandoned work", paths.tmp)):
        size = fsutil.tree_size(directory) if os.path.isdir(directory) else 0
        if size:
            text += ["", "%s (%s): %s" % (kind, directory, human_size(size))]
    return "\n".join(text)


def _ago(epoch) -> str:
    import time
    from rootless.units import human_duration
    return human_duration(time.time() - epoch) + " ago" if epoch else ""


def cmd_prune(ctx, args):
    """Docker's system prune: stopped containers, then dangling (or, -a, unused) images, then
    with --volumes the unused anonymous volumes; and ours: partial downloads and abandoned
    work under the GC lock (so that no pull is resuming them meanwhile)."""
    from rootless.errors import Conflict
    from rootless.streams import human_size
    if not args.force and sys.stdin.isatty():
        items = ["all stopped containers", "all %s" % ("images without at least one container associated "
                 "to them" if args.all else "dangling images"), "partial downloads and abandoned work"]
        if args.volumes:
            items.insert(1, "all anonymous volumes not used by at least one container")
        sys.stderr.write("WARNING! This will remove:\n%s\nAre you sure you want to continue? [y/N] "
                         % "".join("  - %s\n" % i for i in items))
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from rootless import filters as filt
    from rootless.cli.images import container_usage
    from rootless.runtime import prune as cprune
    from rootless.runtime.start import remove
    paths = ctx.paths()
    filters = filt.parse(args.filter) if args.filter else {}
    cfilters = {k: v for k, v in filters.items() if k in cprune.ACCEPTED}
    removed, reclaimed, failed = cprune.prune(paths, cfilters, _writable_size(paths),
                                              reap=lambda record: remove(paths, record))
    if removed:
        out("Deleted Containers:\n" + "\n".join(removed) + "\n")
    if args.volumes:
        from rootless.storage.volumes import ANONYMOUS_LABEL, Volumes
        from rootless.runtime import state
        from rootless.runtime.start import remove_as_mapped_root
        volumes = Volumes(paths, remove_as_mapped_root)
        used = volumes.users(state.Containers(paths).all())
        gone = []
        for record in volumes.all():
            if used.get(record["Name"]) or not (record.get("Anonymous") or ANONYMOUS_LABEL in (record.get("Labels") or {})):
                continue
            reclaimed += fsutil.tree_size(volumes.dir(record["Name"]))
            volumes.remove(record["Name"], [])
            gone.append(record["Name"])
        if gone:
            out("Deleted Volumes:\n" + "\n".join(gone) + "\n")
    store = ctx.store()
    usage = container_usage(paths)
    lines = []
    for rec in store.images(shared=False):  # an image store's are not ours to prune
        if rec.id in usage.images() or (rec.repo_tags and not args.all):
            continue
        lines.extend(store.remove(rec.id, force=True, usage=usage, collect=False))
    gc = store.lock("gc.lock", shared=False, blocking=False)
    if not gc.acquire():
        raise Conflict("a load or pull is under way: prune again when it has finished")
    try:
        reclaimed += _clear(paths.downloads)
    finally:
        gc.release()
    freed = store.collect_garbage()
    if lines:
        out("Deleted Images:\n" + "\n".join(l[0].lower() + l[1:] for l in lines) + "\n")
    for line in failed:
        sys.stderr.write("rootless: error: %s\n" % line)
    out("Total reclaimed space: %s" % human_size(reclaimed + freed["bytes"]))
    return 1 if failed else 0


def _clear(directory: str) -> int:
    """Remove everything in ``directory``; the bytes it held."""
    from rootless import fsutil
    total = 0
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    for name in names:
        path = os.path.join(directory, name)
        total += fsutil.tree_size(path)
        fsutil.remove_tree(path)
    return total


def _writable_size(paths):
    from rootless.runtime import state
    containers = state.Containers(paths)
    return lambda record: fsutil.tree_size(os.path.join(containers.dir(record["id"]), "upper")) + \
        fsutil.tree_size(os.path.join(containers.dir(record["id"]), "rootfs"))


def cmd_check(ctx, args):
    from rootless.image import check
    from rootless.runtime import state
    from rootless.storage.volumes import Volumes
    store = ctx.store()
    paths = ctx.paths()
    if args.repair:
        removed = check.repair(store)
        out("Removed: %d layer(s), %d blob(s), %d abandoned work dir(s)" % (removed["layers"], removed["blobs"],
                                                                          removed["work"]))
    problems, notes = check.check(store, state.Containers(paths).all(), Volumes(paths))
    for line in notes:
        out("note: " + line)
    for line in problems:
        out("problem: " + line)
    out("%d problem(s) found in %s" % (len(problems), paths.root) if problems else "no problems found in %s" % paths.root)
    return 1 if problems else 0


def _fmt():
    from rootless.cli import format
    return format


def _json(obj) -> str:
    from rootless import jsonfast
    return jsonfast.dumps(obj)


def cmd_reset(ctx, args):
    """Empty the storage root. Layers keep their modes (a 0500 directory stays 0500), so
    a plain ``rm -rf`` of the root can fail; this always works for the owner."""
    from rootless import fsutil
    from rootless.errors import Conflict
    root = ctx.paths().root
    if not os.path.isdir(root):
        return 0
    if not args.force:
        if not sys.stdin.isatty():
            raise Conflict("system reset removes everything under %s; add --force to confirm" % root)
        sys.stderr.write("WARNING! This removes every image and all data under %s.\n"
                         "Are you sure you want to continue? [y/N] " % root)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    store = ctx.store()
    lock = store.lock("gc.lock", shared=False, blocking=False)
    if not lock.acquire():
        raise Conflict("another rootless command is adding images under %s; try again when "
                       "it has finished" % root)
    try:
        from rootless.runtime import state
        from rootless.runtime.start import remove
        containers = state.Containers(ctx.paths())
        for record in containers.all():
            if record["status"] in state.ACTIVE:
                raise Conflict("container %s is %s; stop it before system reset (rootless stop %s)"
                               % (record["name"], record["status"], record["name"]))
        for record in containers.all():
            remove(ctx.paths(), record)  # files of sub-ids need the container's user namespace
        for name in sorted(os.listdir(root)):
            if name != "locks":
                fsutil.remove_tree(os.path.join(root, name))
    finally:
        lock.release()
    return 0


LADDERS = (("idmap", "Id mapping"), ("rootfs", "Rootfs driver"), ("network", "Default network"))


def _cgroup_lines(found: dict) -> list:
    """Where containers' cgroups would go (cgroups.detect), and why not when nowhere."""
    where = found["Hierarchy"] + (" (cgroup v2 at %s)" % found["Mount"] if found["Mount"] else "")
    lines = [" Cgroups: %s" % found["Strategy"], "  Hierarchy: %s" % where]
    if found["Path"]:
        lines.append("  Own cgroup: %s" % found["Path"])
    if found["Strategy"] == "none":
        lines += ["  Why: %s" % found["Problem"], "  Remedy: %s" % found["Remedy"]]
    else:
        lines += ["  Under: %s" % found["Parent"],
                  "  Controllers: %s" % (" ".join(found["Controllers"]) or "none")]
    return lines


def _ladder_lines(probes: dict) -> list:
    lines = []
    for key, title in LADDERS:
        result = probes.get(key) or {}
        lines.append(" %s: %s" % (title, result.get("choice", "unknown")))
        lines.append("  Why: %s" % result.get("reason", ""))
        if result.get("remedy"):
            lines.append("  Remedy: %s" % result["remedy"])
    return lines
