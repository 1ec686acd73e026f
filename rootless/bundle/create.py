"""``create``: an image and ``run`` options become a container (record + bundle).

The container directory holds ``config.json`` (the OCI runtime spec), the files bound
over /etc/hosts, /etc/hostname and /etc/resolv.conf, and the rootfs driver's own
directories (the writable layer). Every choice a start depends on (id mapping, rootfs
driver, the image's layers) is made here, once, and recorded in ``container.json``.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

from rootless import jsonfast
from rootless.bundle import spec as spec_mod
from rootless.bundle import users
from rootless.errors import NotFound, Unsupported, UsageError
from rootless.paths import Paths
from rootless.patterns import Pattern


class CreateOptions:
    """``create``/``run`` options beyond the bundle's own (plain class: cheap import)."""

    def __init__(self, image: str, run: spec_mod.RunOptions, name: str = "", user: str = "",
                 userns: str = "", storage_driver: str = "", auto_remove: bool = False,
                 interactive: bool = False, init: bool = False, stop_signal: str = "",
                 add_hosts: Tuple[str, ...] = (), dns: Tuple[str, ...] = (),
                 dns_search: Tuple[str, ...] = (), dns_options: Tuple[str, ...] = (),
                 restart: str = "", log: Optional[dict] = None, detach: bool = False,
                 ports: tuple = (), publish_all: bool = False, expose: tuple = (),
                 network=None, sysctls: Tuple[str, ...] = (), mounts=(), asked_mounts=((), (), (), ()),
                 volumes_from: Tuple[str, ...] = (), resources: Optional[dict] = None,
                 cgroup: Optional[dict] = None, cgroupns: str = "", ipc: str = "", pid: str = ""):
        self.image, self.run, self.name, self.user = image, run, name, user
        self.userns, self.storage_driver, self.auto_remove = userns, storage_driver, auto_remove
        self.interactive, self.init, self.stop_signal = interactive, init, stop_signal
        self.add_hosts, self.dns, self.dns_search, self.dns_options = add_hosts, dns, dns_search, dns_options
        self.restart, self.log, self.detach = restart, log or {}, detach
        # -p bindings (network.ports.PortBinding), -P, --expose (port, proto) pairs: parsed.
        self.ports, self.publish_all, self.expose = tuple(ports), publish_all, tuple(expose)
        # network.modes.Mode, already resolved (the default decided); None: run.network's kind
        self.network, self.sysctls = network, tuple(sysctls)
        # bundle.mounts.Mount of -v, --mount, --tmpfs (parsed), and those flags as given
        self.mounts, self.asked_mounts = list(mounts), asked_mounts
        self.volumes_from = tuple(volumes_from)  # --volumes-from CONTAINER[:ro|rw], as given
        # cgroups.limits's HostConfig fields (and CgroupParent), checked; the cgroup to make
        # for them ({"strategy", "parent", "unified"}: cgroups.detect's answer); --cgroupns
        self.resources, self.cgroup, self.cgroupns = dict(resources or {}), dict(cgroup or {}), cgroupns
        self.ipc = ipc  # --ipc: "" (private), host or none (IPC_MODES)
        self.pid = pid  # --pid: "" (private) or the NAME of container:NAME (pid_mode)


def create(paths: Paths, store, opts: CreateOptions, debug=None, image=None) -> dict:
    """The new container's record; ``image`` is the store's record of ``opts.image`` when
    the caller has looked it up already (under the store's writing lock)."""
    from rootless import probes
    from rootless.runtime import idmapping, state
    from rootless.storage import rootfs
    try:
        image = image or store.lookup(opts.image)
    except NotFound:
        raise NotFound("unable to find image %r locally (load it first: rootless load -i FILE)" % opts.image)
    config = jsonfast.loads(store.read_blob(image.id).decode())
    layers = [(store.layer_diff(d), store.layer_meta(d)["record"]) for d in image.layers]
    probed = probes.collect(paths)
    if probed["idmap"]["choice"] == "unavailable":
        raise Unsupported("%s; %s" % (probed["idmap"]["reason"], probed["idmap"]["remedy"]))
    user = users.resolve(opts.user or config.get("config", {}).get("User") or "",
                         image_file(layers, "etc/passwd"), image_file(layers, "etc/group"))
    containers = state.Containers(paths)
    pid_container = pid_of(opts, containers)
    if pid_container and pid_container["userns"] == "keep-id" and not opts.userns:
        opts.userns = "keep-id"  # its user namespace is this one's: its users are too
    keep_id = idmapping.check_userns(opts.userns)
    strategy = idmapping.get(probed["idmap"]["choice"])
    uid_map, gid_map = strategy.maps(keep_id, user.uid, user.gid)
    if pid_container and all(pid_container["maps"]):  # its user namespace is this one's: so are its maps
        uid_map, gid_map = pid_container["maps"]
    if keep_id and not opts.user:
        user = users.User(os.getuid(), os.getgid(), (), "", "/")
    stores = sorted({store.layer_store(d) for d in image.layers} - {paths.root})  # image stores used
    answers = tuple((d, (probed.get("image_stores") or {}).get(d) or {}) for d in stores)
    driver, why = rootfs.choose(opts.storage_driver or None, probed["rootfs"]["choice"], layers, answers)
    foreign = any(answer.get("foreign") for _, answer in answers)  # another user's layers
    squash = foreign and driver == "fuse-overlayfs"
    cid = state.new_id()
    name = opts.name  # "": Containers.create generates one
    if opts.name:
        _check_name(opts.name)
    run = opts.run
    network = network_of(opts, containers, uid_map)
    if pid_container:
        if network["container"] and network["container"] != pid_container["id"]:
            raise UsageError("conflicting options: --pid container:%s and --network container: of another "
                             "container (a container joins one other's user namespace)" % opts.pid)
    if network["kind"] != run.network:  # network_of's fallback for a namespace without root
        run = run._replace(network=network["kind"])
        opts.run = run  # what ports_of and asked_config read
    hostname = run.hostname or cid[:12]
    run = run._replace(hostname=hostname)
    stop_signal = spec_mod.stop_signal(opts.stop_signal) if opts.stop_signal else \
        config.get("config", {}).get("StopSignal") or "SIGTERM"
    bundle = spec_mod.generate(config.get("config") or {}, run, user, dict(os.environ))
    exposed, published = ports_of(config.get("config") or {}, opts)
    owners = {}
    if strategy.name == "subuid":
        from rootless.storage.owners import effective_owners
        owners = effective_owners(layers)
    complete(bundle, strategy.name, uid_map, gid_map, driver, [diff for diff, _ in layers],
             init=opts.init, stop_signal=stop_signal, owners=bool(owners), ports=published, exposed=exposed,
             volatile=opts.auto_remove, squash=squash)
    network_bundle(bundle, network, opts.sysctls, gid_map, opts.ipc)
    cgroup_bundle(bundle, opts)
    ipc_bundle(bundle, opts.ipc)
    if pid_container:
        from rootless.runtime import config as rc
        bundle["linux"]["namespaces"] = [n for n in bundle["linux"]["namespaces"] if n["type"] != "pid"]
        bundle["annotations"][rc.PID_CONTAINER] = pid_container["id"]
    made = []  # anonymous volumes made for this container: removed again if the create fails
    asked_mounts = []
    if opts.mounts or opts.volumes_from or (config.get("config") or {}).get("Volumes"):
        from rootless.bundle import mounts  # most runs have none: not imported
        try:
            asked = list(opts.mounts) + mounts.volumes_from(containers, opts.volumes_from,
                                                            {m.target for m in opts.mounts})
            asked_mounts = mounts.user_mounts(bundle, asked, paths, config.get("config") or {}, made)
        except BaseException:
            mounts.drop_volumes(paths, made)
            raise
    record = {
        "id": cid, "name": name, "created": time.time(), "image": opts.image, "image_id": image.id,
        "layers": list(image.layers), "driver": driver, "driver_reason": why,
        "idmap": strategy.name, "auto_remove": opts.auto_remove, "interactive": opts.interactive,
        "init": opts.init, "command": bundle["process"]["args"], "labels": dict(run.labels or {}),
        "restart": restart_policy(opts.restart, opts.auto_remove), "log": opts.log,
        # Docker's Config.StopSignal: set only by --stop-signal or the image; `kill` with
        # another signal then does not cancel the restart policy (runtime.lifecycle.kill).
        "stop_signal": stop_signal if (opts.stop_signal or config.get("config", {}).get("StopSignal")) else "",
        "config": asked_config(config.get("config") or {}, opts, dict(os.environ), exposed),
        "host_config": asked_host_config(opts),
        "mounts": asked_mounts,
        "anonymous_volumes": list(made),
        "network": network["name"],
    }
    if stores:
        record["image_stores"] = stores  # where its layers are: diff, commit and check read them
    if network["notice"]:
        record["network_notice"] = network["notice"]  # the CLI prints it after the create

    def prepare(cdir: str) -> None:
        # One line: with ``indent`` json encodes in Python, not C (~0.4 ms here).
        _write(cdir, "config.json", jsonfast.dumps(bundle), mode=None)
        if owners:
            _write(cdir, OWNERS_FILE, jsonfast.dumps(owners), mode=None)
        _write(cdir, "hostname", hostname + "\n")
        _write(cdir, "hosts", hosts_file(hostname, cid, opts.add_hosts))
        _write(cdir, "resolv.conf", resolv_conf(_host_resolv(), opts.dns or network["nameservers"] or (),
                                                opts.dns_search, opts.dns_options))
        unreadable = rootfs.get(driver).prepare(cdir, layers, foreign)
        if unreadable:  # the CLI prints it after the create
            record["rootfs_notice"] = (
                "rootless: notice: %d entries of the image store's layers only their owner may "
                "read are empty in the container (first: /%s); fuse-overlayfs would show them as they are"
                % (len(unreadable), unreadable[0]))
    if debug:
        debug("container %s: driver %s (%s), id mapping %s" % (cid[:12], driver, why, strategy.name))
    try:
        return containers.create(record, prepare)
    except BaseException:
        if made:
            from rootless.bundle.mounts import drop_volumes
            drop_volumes(paths, made)
        raise


OWNERS_FILE = "owners.json"


def cgroup_mount(privileged: bool) -> dict:
    """As Docker: the container's own cgroup as the root of a cgroup2 mount (its cgroup
    namespace shows it so), read-only unless --privileged."""
    return {"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup2",
            "options": ["nosuid", "noexec", "nodev"] + ([] if privileged else ["ro"])}


def cgroup_bundle(bundle: dict, opts: CreateOptions) -> None:
    """--cgroupns host (no cgroup namespace of its own), and the cgroup to make for the
    limits: linux.resources.unified (cgroup v2 files), the strategy's annotation, and
    cgroup2 at /sys/fs/cgroup (read-only unless --privileged) showing it as the root."""
    linux = bundle["linux"]
    if opts.cgroupns == "host":
        linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "cgroup"]
    if opts.cgroup:
        from rootless.runtime import config as rc
        if opts.cgroupns != "host":
            bundle["mounts"].append(cgroup_mount(opts.run.privileged))
        linux["resources"] = {"unified": dict(opts.cgroup.get("unified") or {})}
        bundle["annotations"][rc.CGROUP] = jsonfast.dumps({
            "strategy": opts.cgroup["strategy"], "parent": opts.cgroup["parent"],
            "below": opts.resources.get("CgroupParent", "")})


# --ipc as Docker spells it -> ours: a namespace of its own (private, shareable: no other
# container can join one here), the host's, or its own without /dev/shm (none).
IPC_MODES = {"": "", "private": "", "shareable": "", "host": "host", "none": "none"}


def ipc_mode(text: str) -> str:
    """--ipc checked (the CLI asks before anything is pulled or made)."""
    if text in IPC_MODES:
        return IPC_MODES[text]
    if text.startswith("container:"):
        raise UsageError("--ipc container:NAME is not supported: each container has its own IPC "
                         "namespace, or shares the host's with --ipc host")
    raise UsageError("--ipc: invalid IPC mode %r (private, shareable, host or none)" % text)


def pid_mode(text: str) -> str:
    """--pid checked (before anything is pulled or made): "" or container:NAME's NAME."""
    if text in ("", "private"):
        return ""
    if text.startswith("container:") and text[len("container:"):]:
        return text[len("container:"):]
    if text == "host":
        raise UsageError("--pid host is not supported: a user namespace cannot mount the host's /proc "
                         "afresh, and processes in different user namespaces cannot trace or read "
                         "each other; --pid container:NAME shares one container's namespaces")
    raise UsageError("--pid: invalid PID mode %r (private or container:NAME)" % text)


def pid_of(opts: CreateOptions, containers) -> Optional[dict]:
    """--pid container:NAME: {"id", "maps", "userns"} of that container (its ID, its uid
    and gid maps, its --userns), None without. Joining its pid namespace means joining its
    user namespace (so a --network container:OTHER must name the same container)."""
    if not opts.pid:
        return None
    other = containers.find(opts.pid)
    with open(os.path.join(containers.dir(other["id"]), "config.json")) as f:
        linux = jsonfast.load(f).get("linux") or {}
    return {"id": other["id"], "maps": (linux.get("uidMappings"), linux.get("gidMappings")),
            "userns": (other.get("host_config") or {}).get("UsernsMode", "")}


def ipc_bundle(bundle: dict, mode: str) -> None:
    """--ipc host: no IPC namespace of its own, and the host's /dev/shm and /dev/mqueue
    bound in (an mqueue file system belongs to the IPC namespace it was mounted in, and
    ours may mount one only for a namespace of its own); network.modes.sysctls refuses its
    IPC sysctls. --ipc none: no /dev/shm."""
    if mode == "none":
        bundle["mounts"] = [m for m in bundle["mounts"] if m["destination"] != "/dev/shm"]
    if mode != "host":
        return
    linux = bundle["linux"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "ipc"]
    kept = []
    for m in bundle["mounts"]:
        if m["destination"] in ("/dev/shm", "/dev/mqueue"):
            if not os.path.isdir(m["destination"]):
                continue  # a host without it: the container has none either
            m = {"destination": m["destination"], "type": "bind", "source": m["destination"],
                 "options": ["rbind", "nosuid", "nodev", "noexec"]}
        kept.append(m)
    bundle["mounts"] = kept


def network_of(opts: CreateOptions, containers, uid_map=None) -> dict:
    """The container's network as the bundle keeps it: {"kind", "options", "container" (the
    ID of container:NAME's), "name" (inspect's NetworkMode), "nameservers" (None: the
    host's)}. Docker's conflicts with container:NAME are refused here, before anything."""
    mode = opts.network
    notice = ""
    if mode is not None and uid_map is not None and not any(m["containerID"] == 0 for m in uid_map):
        from rootless.network import modes
        mode, notice = modes.without_root(mode)
    kind = mode.kind if mode is not None else opts.run.network
    options = mode.options if mode is not None else {}
    found = {"kind": kind, "options": options, "container": "", "name": kind, "nameservers": None,
             "notice": notice}
    if kind == "container":
        if opts.ports or opts.publish_all:
            raise UsageError("conflicting options: port publishing and the container type network mode")
        if opts.run.hostname:
            raise UsageError("conflicting options: hostname and the network mode")
        if opts.dns or opts.add_hosts:
            raise UsageError("conflicting options: dns and the network mode" if opts.dns else
                             "conflicting options: custom host-to-IP mapping and the network mode")
        other = containers.find(mode.container)
        found.update(container=other["id"], name="container:" + other["id"])
    elif kind in ("slirp4netns", "pasta"):
        from rootless.network import modes
        found["nameservers"] = modes.nameservers(kind, options)
    return found


def network_bundle(bundle: dict, network: dict, sysctls, gid_map, ipc: str = "") -> None:
    """The network's annotations (see runtime.config) and ``linux.sysctl``: the --sysctl
    entries, with the ping default for a network namespace of the container's own."""
    from rootless.runtime import config as rc
    annotations = bundle["annotations"]
    annotations[rc.NETWORK] = network["kind"]
    if network["options"]:
        annotations[rc.NETWORK_OPTIONS] = jsonfast.dumps(network["options"])
    if network["container"]:
        annotations[rc.NETWORK_CONTAINER] = network["container"]
    if os.environ.get("ROOTLESS_PORT_BYPASS") == "0":  # its published ports are relayed (network.bypass)
        annotations[rc.PORT_BYPASS] = "false"
    if sysctls or network["kind"] in spec_mod.PRIVATE_NETWORKS:
        from rootless.network import modes
        found = modes.sysctls(sysctls, network["kind"], gid_map, ipc)
        if found:
            bundle["linux"]["sysctl"] = found


def ports_of(image_config: dict, opts: CreateOptions) -> Tuple[List[str], list]:
    """(exposed ports as ``"80/tcp"``, the bindings to publish): see ``network.ports``.
    With the host's network nothing is published (Docker discards -p there; the CLI
    warns). network.ports is imported only when some port is in play."""
    if not (opts.ports or opts.expose or opts.publish_all or image_config.get("ExposedPorts")):
        return [], []
    from rootless.network import ports
    exposed = ports.exposed_ports(image_config.get("ExposedPorts"), opts.expose, opts.ports)
    if opts.run.network in ("host", "container"):
        return exposed, []
    return exposed, ports.to_publish(opts.ports, opts.publish_all, exposed)


def asked_config(image_config: dict, opts: CreateOptions, host_env: dict, exposed: Optional[List[str]] = None) -> dict:
    """What Docker keeps as the container's Config (``inspect`` shows it): the image's
    settings with the options applied, before the runtime adds its defaults (pure).
    ``exposed``: ``ports_of``'s, kept as ExposedPorts (Docker omits it when empty)."""
    run = opts.run
    entry, cmd = spec_mod.command_parts(image_config, run)
    attached = not opts.detach
    if exposed is None:
        exposed = ports_of(image_config, opts)[0]
    return {
        "User": opts.user or image_config.get("User") or "",
        "AttachStdin": opts.interactive and attached, "AttachStdout": attached, "AttachStderr": attached,
        "ExposedPorts": {key: {} for key in sorted(exposed)} or None,
        "Tty": run.tty, "OpenStdin": opts.interactive, "StdinOnce": opts.interactive and attached,
        "Env": spec_mod.config_env(image_config, run, host_env),
        "Cmd": cmd or None, "Entrypoint": entry or None,
        "WorkingDir": run.workdir or image_config.get("WorkingDir") or "",
        "Labels": dict(image_config.get("Labels") or {}, **(run.labels or {})),
    }


def asked_host_config(opts: CreateOptions) -> dict:
    """The HostConfig fields Docker keeps as given (``inspect`` shows them), pure."""
    run = opts.run
    asked = {
        "CapAdd": list(run.cap_add) or None, "CapDrop": list(run.cap_drop) or None,
        "Dns": list(opts.dns), "DnsOptions": list(opts.dns_options), "DnsSearch": list(opts.dns_search),
        "ExtraHosts": list(opts.add_hosts) or None, "Privileged": run.privileged,
        "ReadonlyRootfs": run.read_only, "UsernsMode": opts.userns,
        "PortBindings": _port_bindings(opts.ports), "PublishAllPorts": opts.publish_all,
        "Sysctls": dict(item.partition("=")[::2] for item in opts.sysctls) or None,
        "VolumesFrom": list(opts.volumes_from) or None,
    }
    asked.update(opts.resources)
    if opts.ipc:
        asked["IpcMode"] = opts.ipc
    if opts.pid:
        asked["PidMode"] = "container:" + opts.pid
    if any(opts.asked_mounts):
        from rootless.bundle.mounts import host_config
        asked.update(host_config(*opts.asked_mounts))
    return asked


def _port_bindings(asked) -> dict:
    if not asked:
        return {}
    from rootless.network import ports
    return ports.port_bindings(asked)


def restart_policy(text: str, auto_remove: bool) -> dict:
    """``--restart no|always|unless-stopped|on-failure[:N]`` as Docker checks it (pure):
    the client's syntax (docker/cli opts.ParseRestartPolicy, strconv.Atoi for the count),
    its ``--rm`` conflict, then the daemon's ValidateRestartPolicy, with their wording."""
    name, sep, count_text = (text or "").partition(":")
    if sep and not name:
        raise UsageError("invalid restart policy format: no policy provided before colon")
    count = 0
    if count_text:
        if not _COUNT.match(count_text):
            raise UsageError("invalid restart policy format: maximum retry count must be an integer")
        count = int(count_text)
    name = name or "no"
    if auto_remove and name != "no":
        raise UsageError("conflicting options: cannot specify both --restart and --rm")
    if name in ("no", "always", "unless-stopped"):
        if count:
            raise UsageError("invalid restart policy: maximum retry count can only be used with "
                             "'on-failure'" + (" and cannot be negative" if count < 0 else ""))
    elif name == "on-failure":
        if count < 0:
            raise UsageError("invalid restart policy: maximum retry count cannot be negative")
    else:
        raise UsageError("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', "
                         "'on-failure', or 'unless-stopped'" % name)
    return {"name": name, "maximum_retry_count": count}


def complete(bundle: dict, idmap: str, uid_map, gid_map, driver: str, layer_dirs: List[str],
             init: bool, stop_signal: str, owners: bool, ports=(), exposed=(), volatile=False,
             squash=False) -> None:
    """Add to ``config.json`` what the runtime acts on beyond the image and run options:
    the id maps, the rootfs and its driver, the generated /etc files, the ports to publish
    and the exposed ones (see runtime.config). ``volatile``: the writable layer goes with
    the container (``--rm``)."""
    from rootless.runtime import config as rc
    bundle["root"]["path"] = "rootfs" if driver == "copy" else "merged"
    bundle["linux"]["uidMappings"], bundle["linux"]["gidMappings"] = uid_map, gid_map
    bundle["mounts"] += [{"destination": "/etc/" + name, "type": "bind", "source": name,
                          "options": ["bind"]} for name in ("hosts", "hostname", "resolv.conf")]
    annotations = bundle["annotations"]
    annotations.update({rc.IDMAP: idmap, rc.DRIVER: driver, rc.LAYERS: jsonfast.dumps(layer_dirs),
                        rc.STOP_SIGNAL: stop_signal})
    if init:
        annotations[rc.INIT] = "true"
    if volatile:
        annotations[rc.VOLATILE] = "true"
    if squash:  # layers of another user's image store (storage.driver.probe_store)
        annotations[rc.SQUASH] = "true"
    if owners:
        annotations[rc.OWNERS] = OWNERS_FILE
    if ports:
        from rootless.network.ports import to_json
        annotations[rc.PORTS] = to_json(ports)
    if exposed:
        annotations[rc.EXPOSED] = jsonfast.dumps(list(exposed))


def _write(cdir: str, name: str, text: str, mode: Optional[int] = 0o644) -> None:
    """A bundle file; an error names it (a write's own error, ENOSPC on a full disk,
    carries no file name)."""
    path = os.path.join(cdir, name)
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None
    if mode is not None:
        os.chmod(path, mode)


_COUNT = Pattern(r"[+-]?[0-9]+\Z", plain="0123456789")  # strconv.Atoi's
_NAME = Pattern(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")  # Docker's (Go's $ is our \Z)


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise UsageError("invalid container name %r: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" % name)


def image_file(layers: List[Tuple[str, dict]], rel: str, limit: int = 1 << 20) -> str:
    """The text of a small regular file as the image shows it (topmost layer wins; a
    whiteout or opaque directory above hides the layers below). Never follows symlinks."""
    parts = rel.split("/")
    for diff, record in reversed(layers):
        path = diff
        ok = True
        for part in parts[:-1]:
            path = os.path.join(path, part)
            if not os.path.isdir(path) or os.path.islink(path):
                ok = False
                break
        if ok:
            path = os.path.join(path, parts[-1])
            if os.path.islink(path):
                return ""
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    return f.read(limit).decode(errors="replace")
            if os.path.lexists(path):
                return ""  # a whiteout mark or something that is not a file
        hidden = record.get("whiteouts", []) + record.get("opaque_dirs", [])
        if any(rel == h or rel.startswith(h + "/") for h in hidden if h):
            return ""
    return ""


def hosts_file(hostname: str, cid: str, add_hosts) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    for entry in add_hosts:
        host, sep, ip = entry.partition(":")
        if not sep or not host or not ip:
            raise UsageError("invalid --add-host %r: use HOST:IP" % entry)
        lines.append("%s\t%s" % (ip, host))
    names = [hostname] + ([cid[:12]] if cid[:12] != hostname else [])
    lines.append("127.0.1.1\t%s" % " ".join(names))
    return "\n".join(lines) + "\n"


def resolv_conf(host_text: str, dns, search, options) -> str:
    """The host's resolv.conf, with --dns, --dns-search, --dns-option replacing its parts."""
    kept = []
    for line in host_text.splitlines():
        word = line.split()[0] if line.split() else ""
        if (word == "nameserver" and dns) or (word in ("search", "domain") and search) or (word == "options" and options):
            continue
        kept.append(line)
    kept += ["nameserver " + d for d in dns]
    if search:
        kept.append("search " + " ".join(s for s in search if s != "."))
    if options:
        kept.append("options " + " ".join(options))
    return "\n".join(kept).strip() + "\n"


def _host_resolv() -> str:
    try:
        with open("/etc/resolv.conf") as f:
            return f.read()
    except OSError:
        return ""
