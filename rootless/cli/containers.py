"""Container verbs: create, run, start, rm, ps (stop, kill, restart, wait: cli.lifecycle;
cp, export: cli.files; diff, commit, top: cli.commit; exec: cli.exec; attach: cli.attach;
port: cli.port)."""

import sys

from rootless.cli import out, require_tty


def register(sub, word=None) -> None:
    """The container verbs, at the top level and under ``container``. Given the command
    ``word``, only its own parser is built (``run`` builds no ``stop``, ``ps``...): each
    parser costs start-up time on every call."""
    csub = None
    if word in (None, "container"):
        container = sub.add_parser("container", help="manage containers")
        csub = container.add_subparsers(dest="container_command", metavar="COMMAND", parser_class=type(container))
    everything = csub is not None

    def parents(name):
        """Where the parser of ``name`` goes: the top level, and ``container`` when built."""
        return [p for p in (sub if everything or word == name else None, csub) if p is not None]
    for name, helptext, adder in (("create", "create a container", _create_args),
                                  ("run", "create and run a container", _run_args)):
        for parent in parents(name):
            # add_help=False: -h is --hostname, as in Docker; --help still prints help.
            parser = parent.add_parser(name, help=helptext, add_help=False)
            parser.add_argument("--help", action="help", help="show this help message and exit")
            adder(parser)
    for parent in parents("start"):
        p = parent.add_parser("start", help="start created or stopped containers")
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        p.add_argument("-a", "--attach", action="store_true", help="attach STDOUT/STDERR and forward signals")
        p.add_argument("-i", "--interactive", action="store_true", help="attach the container's STDIN")
        p.add_argument("--detach-keys", default="", metavar="string",
                       help="override the key sequence for detaching a container (default ctrl-p,ctrl-q)")
        p.set_defaults(handler=cmd_start)
    for parent in parents("rm"):
        p = parent.add_parser("rm", **({"aliases": ["remove"]} if parent is csub else {}), help="remove containers")
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        p.add_argument("-f", "--force", action="store_true", help="force the removal of a running container (uses SIGKILL)")
        p.add_argument("-v", "--volumes", action="store_true", help="remove the anonymous volumes of the container")
        p.set_defaults(handler=cmd_rm)
    import importlib
    if csub is not None:
        importlib.import_module("rootless.cli.inspect").add_container_parser(csub)
    for name, words in (("logs", ("logs",)), ("attach", ("attach",)),
                        ("lifecycle", ("stop", "restart", "kill", "wait", "pause", "unpause")),
                        ("ps", ("ps", "rename")), ("exec", ("exec",)), ("files", ("cp", "export")),
                        ("commit", ("diff", "commit", "top")), ("port", ("port",)), ("stats", ("stats",)),
                        ("update", ("update",))):
        if everything or word in words:
            importlib.import_module("rootless.cli." + name).add_parsers(sub, csub)


# What parse_log_opts gives for no --log-driver and no --log-opt (a test checks that it
# still does), without importing it and compiling its patterns on every run.
DEFAULT_LOG = {"driver": "json-file", "max_size": None, "max_file": 1, "compress": False, "mode": "", "opts": {}}


def _create_args(p) -> None:
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("args", nargs="...", metavar="COMMAND [ARG...]")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("--name", default="", help="the container's name")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VALUE]",
                   help="set an environment variable (KEY alone: yours; KEY*: all of yours whose names begin with KEY)")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE", help="read environment variables from a file")
    p.add_argument("--entrypoint", default=None, help="override the image's entrypoint")
    p.add_argument("-w", "--workdir", default=None, help="working directory inside the container")
    p.add_argument("-u", "--user", default="", help="user[:group], by name or number")
    p.add_argument("-h", "--hostname", default="", help="the container's hostname (default: its short ID)")
    p.add_argument("-l", "--label", action="append", default=[], metavar="KEY[=VALUE]", help="set a label")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--init", action="store_true", help="run an init as pid 1 that reaps zombies and forwards signals")
    p.add_argument("--stop-signal", default="", help="signal that stops the container (default SIGTERM)")
    p.add_argument("--read-only", action="store_true", help="mount the root file system read-only")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="[SRC:]DST[:MODE]",
                   help="bind mount a host path (absolute SRC) or a volume (named SRC, or none)")
    p.add_argument("--mount", action="append", default=[], metavar="type=bind|volume|tmpfs,...",
                   help="attach a file system mount (source=, target=, readonly, ...)")
    p.add_argument("--tmpfs", action="append", default=[], metavar="DST[:OPTIONS]",
                   help="mount a tmpfs (size=64m, mode=1777, exec, ...)")
    p.add_argument("--volumes-from", action="append", default=[], metavar="CONTAINER[:ro|rw]",
                   help="mount the volumes and bind mounts of another container")
    p.add_argument("--device", action="append", default=[], metavar="HOST[:CONTAINER][:rw]",
                   help="add a host device the user can open (e.g. /dev/fuse)")
    p.add_argument("--privileged", action="store_true", help="all capabilities, no masked paths")
    p.add_argument("--cap-add", action="append", default=[], help="add a capability")
    p.add_argument("--cap-drop", action="append", default=[], help="drop a capability")
    p.add_argument("--add-host", action="append", default=[], metavar="HOST:IP", help="add a line to /etc/hosts")
    p.add_argument("--dns", action="append", default=[], help="DNS server for /etc/resolv.conf")
    p.add_argument("--dns-search", action="append", default=[], help="DNS search domain")
    p.add_argument("--dns-option", action="append", default=[], help="DNS resolver option")
    p.add_argument("--userns", default="", help="keep-id: your uid inside is your uid outside")
    p.add_argument("--storage-driver", default="", choices=["", "overlay", "fuse-overlayfs", "copy"],
                   help="force a rootfs driver (default: the best one probed)")
    p.add_argument("--pull", default="missing", choices=["missing", "always", "never"],
                   help="pull the image before creating (default: only when missing)")
    p.add_argument("--platform", default=None, help="OS/ARCH[/VARIANT] of the image to pull")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress the pull output")
    p.add_argument("--tls-verify", default=None, metavar="BOOL", help="verify the registry's TLS certificate")
    p.add_argument("--network", "--net", default="", metavar="MODE",
                   help="slirp4netns[:OPTIONS] or pasta[:OPTIONS]: a private network with outbound "
                   "access (default: the first of them found); none: only loopback; host: the "
                   "host's network; container:NAME: that container's network")
    p.add_argument("--sysctl", action="append", default=[], metavar="KEY=VALUE",
                   help="a sysctl of the container's own namespaces (net.*, kernel.shm*, ...)")
    p.add_argument("-p", "--publish", action="append", default=[], metavar="[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]",
                   help="publish a container's port(s) to the host")
    p.add_argument("-P", "--publish-all", action="store_true", help="publish all exposed ports to random ports")
    p.add_argument("--expose", action="append", default=[], metavar="PORT[/PROTO]",
                   help="expose a port or a range of ports")
    p.add_argument("--restart", default="no", help="restart policy: no, on-failure[:max-retries], always, unless-stopped")
    p.add_argument("--log-driver", default="", help="logging driver: json-file (default) or none")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="log driver options (json-file: max-size, max-file, compress, ...)")
    resource_args(p)
    p.add_argument("--cgroupns", default="", metavar="string",
                   help="cgroup namespace: private (the container's own, the default) or host")
    p.add_argument("--pid", default="", metavar="string",
                   help="PID namespace to use: the container's own (the default), or container:NAME "
                   "(that container's, with its user namespace: MPI ranks of a node in one set)")
    p.add_argument("--ipc", default="", metavar="string",
                   help="IPC namespace: private (the container's own, the default), host (the host's, "
                   "and its /dev/shm) or none (no /dev/shm)")
    p.set_defaults(handler=cmd_create)


# The cgroup limits, by argparse dest (cgroups.limits.FLAGS reads the same names): for
# create/run and update. Here, so that a run without them imports nothing of cgroups.
RESOURCE_FLAGS = (
    ("memory", ("-m", "--memory"), "bytes", "memory limit"),
    ("memory_reservation", ("--memory-reservation",), "bytes", "memory soft limit"),
    ("memory_swap", ("--memory-swap",), "bytes", "swap limit equal to memory plus swap: -1 for unlimited swap"),
    ("cpus", ("--cpus",), "decimal", "number of CPUs"),
    ("cpu_shares", ("-c", "--cpu-shares"), "int", "CPU shares (relative weight)"),
    ("cpu_period", ("--cpu-period",), "int", "limit the CPU CFS period (microseconds)"),
    ("cpu_quota", ("--cpu-quota",), "int", "limit the CPU CFS quota (microseconds per period)"),
    ("cpuset_cpus", ("--cpuset-cpus",), "string", "CPUs in which to allow execution (0-3, 0,1)"),
    ("cpuset_mems", ("--cpuset-mems",), "string", "memory nodes in which to allow execution (0-3, 0,1)"),
    ("pids_limit", ("--pids-limit",), "int", "the container's pids limit (-1 for unlimited)"),
    ("blkio_weight", ("--blkio-weight",), "uint16", "block IO relative weight, 10 to 1000, or 0 to disable"))


def resource_args(p, parent: bool = True) -> None:
    """The limit flags (and, for create/run, --cgroup-parent); update has them too."""
    for dest, flags, metavar, text in RESOURCE_FLAGS:
        p.add_argument(*flags, dest=dest, default=None, metavar=metavar, help=text)
    if not parent:
        return
    p.add_argument("--cgroup-parent", default="", metavar="string",
                   help="the container's cgroup under this one, inside your delegated cgroup tree")


def _run_args(p) -> None:
    _create_args(p)
    p.add_argument("-d", "--detach", action="store_true", help="run the container in the background and print its ID")
    p.add_argument("--detach-keys", default="", metavar="string",
                   help="override the key sequence for detaching a container (default ctrl-p,ctrl-q)")
    p.set_defaults(handler=cmd_run)


def _options(ctx, args):
    from rootless.bundle.create import CreateOptions, ipc_mode, pid_mode
    from rootless.bundle.spec import RunOptions, env_file_lines
    env = env_file_lines(args.env_file) + args.env
    labels = {}
    for item in args.label:
        key, _, value = item.partition("=")
        labels[key] = value
    from rootless.network import modes
    network, args.network_notice = modes.resolve(modes.parse(args.network))
    run = RunOptions(args=tuple(args.args), entrypoint=args.entrypoint, env=tuple(env),
                     workdir=args.workdir, hostname=args.hostname, tty=args.tty,
                     read_only=args.read_only, privileged=args.privileged,
                     cap_add=tuple(args.cap_add), cap_drop=tuple(args.cap_drop), labels=labels,
                     network=network.kind)
    ports, expose = (), ()
    if args.publish or args.expose:
        from rootless.network.ports import parse_expose, parse_publish
        ports = tuple(b for value in args.publish for b in parse_publish(value))
        expose = tuple(pair for value in args.expose for pair in parse_expose(value))
    log = dict(DEFAULT_LOG)
    if args.log_driver or args.log_opt:
        from rootless.runtime.logopts import parse_log_opts
        log = parse_log_opts(args.log_driver or None, args.log_opt)
    from rootless.bundle import mounts
    asked_mounts = mounts.collect(args.volume, args.mount, args.tmpfs, devices=args.device) \
        if (args.volume or args.mount or args.tmpfs or args.device) else []
    if args.cgroupns not in ("", "host", "private"):
        from rootless.errors import UsageError
        raise UsageError("--cgroupns: invalid CGROUP mode")
    ipc = ipc_mode(args.ipc)
    pid = pid_mode(args.pid)
    resources, cgroup = _resources(args)
    return CreateOptions(args.image, run, name=args.name, user=args.user, userns=args.userns,
                         storage_driver=args.storage_driver, auto_remove=args.rm,
                         interactive=args.interactive, init=args.init, stop_signal=args.stop_signal,
                         add_hosts=tuple(args.add_host), dns=tuple(args.dns),
                         dns_search=tuple(args.dns_search), dns_options=tuple(args.dns_option),
                         restart=args.restart, log=log, detach=getattr(args, "detach", False),
                         ports=ports, publish_all=args.publish_all, expose=expose,
                         network=network, sysctls=tuple(args.sysctl), mounts=asked_mounts,
                         asked_mounts=(tuple(args.volume), tuple(args.mount), tuple(args.tmpfs),
                                       tuple(args.device)),
                         volumes_from=tuple(args.volumes_from), resources=resources, cgroup=cgroup,
                         cgroupns=args.cgroupns, ipc=ipc, pid=pid)


def _resources(args) -> "tuple[dict, dict]":
    """(HostConfig resource fields, the cgroup to make) from the limit flags; a limit that
    this host cannot enforce fails here, before anything is made (cgroups.detect)."""
    values = {dest: getattr(args, dest) for dest, _, _, _ in RESOURCE_FLAGS}
    if all(v is None for v in values.values()) and not args.cgroup_parent:
        return {}, {}
    from rootless.cgroups import detect, limits
    fields = limits.parse(values)
    if args.cgroup_parent:
        fields["CgroupParent"] = limits.cgroup_parent(args.cgroup_parent)
    from rootless.errors import RootlessError
    needed = limits.asked(values, fields)
    if not needed and not args.cgroup_parent:
        return fields, {}  # only "no limit" values (--pids-limit -1): nothing to make
    found = detect.detect()
    if found.strategy == "none" and not needed:
        raise RootlessError("--cgroup-parent needs a cgroup v2 tree delegated to you: %s; %s"
                            % (found.problem, found.remedy))
    refused = detect.refusal(found, needed)
    if refused:
        raise RootlessError(refused)
    return fields, {"strategy": found.strategy, "parent": found.parent, "unified": limits.unified(fields)}


def _create(ctx, args) -> dict:
    opts = _options(ctx, args)  # a bad option fails here, before anything is pulled or made
    record = _make(ctx, args, opts)
    for notice in (args.network_notice, record.get("network_notice"), record.get("rootfs_notice")):
        if notice:
            sys.stderr.write(notice + "\n")
    if opts.ports and opts.run.network == "host":
        # Docker's daemon warns so at create (its client prints it); bundle.create dropped them.
        sys.stderr.write("WARNING: Published ports are discarded when using host network mode\n")
    return record


def _make(ctx, args, opts) -> dict:
    from rootless.bundle.create import create
    from rootless.errors import NotFound
    store = ctx.store()
    debug = ctx.log if ctx.debug else None
    if args.pull != "always":
        # Held shared from the image lookup until the record names the layers: garbage
        # collection (exclusive) cannot remove them in between, even if rmi -f drops the
        # image. An image already here is looked up once, and the pull machinery (with
        # hashlib and threading, ~8 ms) is not even imported.
        with store.ensure().writing():
            try:
                image = store.lookup(args.image)
            except NotFound:
                image = None
            if image is not None or args.pull == "never":
                return create(ctx.paths(), store, opts, debug=debug, image=image)
    from rootless.image.pull import ensure_image, pull
    from rootless.cli.registry import _tls_verify
    ensure_image(store, args.image, args.pull, lambda name: pull(
        store, name, platform=args.platform, tls_verify=_tls_verify(args.tls_verify), stream=sys.stderr,
        quiet=args.quiet, debug=debug))
    with store.ensure().writing():
        return create(ctx.paths(), store, opts, debug=debug)


def cmd_create(ctx, args):
    out(_create(ctx, args)["id"])
    return 0


def cmd_run(ctx, args):
    """``-d``: the monitor runs it; ``-it``: the monitor runs it with this terminal attached
    (so it can be detached from); anything else runs in the foreground, the CLI its parent
    (the fast path: no monitor to reach)."""
    from rootless.runtime.start import start
    if not getattr(args, "detach", False):  # as Docker: -dit needs no terminal, nothing reads it
        require_tty(args.interactive, args.tty)
    keys = None
    if args.detach_keys or (args.interactive and args.tty):
        from rootless.runtime.terminal import detach_keys
        keys = detach_keys(args.detach_keys)  # a bad value is refused before anything is made
    record = _create(ctx, args)
    if args.interactive and args.tty and not getattr(args, "detach", False):
        from rootless.runtime.attached import run_attached
        return run_attached(ctx.paths(), record, stdin=True, detach_keys=keys)
    if getattr(args, "detach", False):
        from rootless.runtime import lifecycle
        try:
            lifecycle.start_detached(ctx.paths(), record)
        except BaseException:
            if record.get("auto_remove"):
                _reap(ctx)(record)
            raise
        out(record["id"])
        return 0
    return start(ctx.paths(), record, interactive=args.interactive, debug=ctx.log if ctx.debug else None)


def _reap(ctx):
    from rootless.runtime.start import remove
    paths = ctx.paths()
    return lambda record: remove(paths, record)


def cmd_start(ctx, args):
    """As Docker: attached (-a/-i) the CLI runs one container in the foreground; else each
    container is started in the background and its name printed as given."""
    from rootless.errors import RootlessError, UsageError
    from rootless.runtime import lifecycle, state
    from rootless.runtime.start import start
    containers = state.Containers(ctx.paths())
    if args.attach or args.interactive:
        from rootless.runtime import attached, terminal
        if len(args.containers) > 1:
            raise UsageError("you cannot start and attach multiple containers at once")
        keys = terminal.detach_keys(args.detach_keys)
        record = containers.find(args.containers[0], _reap(ctx))
        if record["status"] in state.ACTIVE:  # as Docker: the start is a no-op, the attach is not
            return attached.attach(ctx.paths(), record, stdin=args.interactive, detach_keys=keys, sig_proxy=True)
        # As Docker: stdin is attached only with `start -i`, whatever create was given; with a
        # tty as well, the monitor runs it with this terminal attached (it can be detached).
        if args.interactive and attached.has_tty(ctx.paths(), record):
            return attached.run_attached(ctx.paths(), record, stdin=True, detach_keys=keys)
        return start(ctx.paths(), record, interactive=args.interactive, debug=ctx.log if ctx.debug else None)
    failed = None
    for ref in args.containers:
        try:
            record = containers.find(ref, _reap(ctx))
            if record["status"] not in state.ACTIVE:
                lifecycle.start_detached(ctx.paths(), record)
            out(ref)
        except RootlessError as e:
            sys.stderr.write("rootless: error: %s\n" % e)
            failed = e
    return failed.exit_code if failed else 0


def cmd_rm(ctx, args):
    from rootless.errors import RootlessError
    from rootless.runtime import lifecycle, state
    containers = state.Containers(ctx.paths())
    failed = None
    for ref in args.containers:
        try:
            lifecycle.remove(ctx.paths(), containers.find(ref, _reap(ctx)), force=args.force, volumes=args.volumes)
            out(ref)
        except RootlessError as e:
            sys.stderr.write("rootless: error: %s\n" % e)
            failed = e
    return failed.exit_code if failed else 0
