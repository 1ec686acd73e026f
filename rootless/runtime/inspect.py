"""A container as Docker's ``inspect`` shows it: its JSON, from the record and the bundle.

``container_json`` is pure: the record (``runtime.state``), the bundle's ``config.json``
(the OCI spec written at create, see ``runtime.config``), the container directory and what
the caller measured (the first process's pid if it lives, the sizes for ``--size``). It
lives in ``runtime/``, beside ``status``, because it reads only what the runtime keeps;
finding the object (container first, then image) and printing it is ``cli.inspect``.

Every field of Docker's container JSON is there with Docker's type, in Docker's order.
What rootless cannot know (no daemon, no networks; limits that were not asked) is Docker's
zero value, never made up: ``""``, ``0``, ``null``, ``{}``. Records written before
``config`` and ``host_config`` were kept (see ``bundle.create``) are shown from the bundle:
their Cmd is the whole command and Entrypoint null.
"""

import os
import time
from typing import List, Optional, Tuple

from rootless.runtime.status import ALIVE, PAUSED, RESTARTING, state_string

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as Docker prints a time never set
DEFAULT_SHM = 67108864
ENDPOINT_FIELDS = (("IPAMConfig", None), ("Links", None), ("Aliases", None), ("MacAddress", ""),
                   ("DriverOpts", None), ("GwPriority", 0), ("NetworkID", ""), ("EndpointID", ""),
                   ("Gateway", ""), ("IPAddress", ""), ("IPPrefixLen", 0), ("IPv6Gateway", ""),
                   ("GlobalIPv6Address", ""), ("GlobalIPv6PrefixLen", 0), ("DNSNames", None))


def rfc3339_nano(t: Optional[float]) -> str:
    """Epoch seconds as Go's RFC3339Nano in UTC (trailing zeros of the fraction dropped);
    Go's zero time when never. Records keep microseconds, so no more digits are shown."""
    if not t:
        return ZERO_TIME
    sec = int(t)
    micro = int(round((t - sec) * 1e6))
    if micro >= 1000000:
        sec, micro = sec + 1, micro - 1000000
    frac = ("%06d" % micro).rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ("." + frac if frac else "") + "Z"


def container_json(record: dict, spec: Optional[dict], cdir: str, pid: int = 0,
                   size: Optional[Tuple[int, int]] = None) -> dict:
    """Docker's ``ContainerJSON`` of one container. ``pid``: the host pid of its first
    process while it lives (else 0); ``size``: (SizeRw, SizeRootFs) for ``--size``."""
    spec = spec or {}
    argv = list(record.get("command") or (spec.get("process") or {}).get("args") or [])
    obj = {
        "Id": record["id"],
        "Created": rfc3339_nano(record.get("created")),
        "Path": argv[0] if argv else "",
        "Args": argv[1:],
        "State": _state(record, pid),
        "Image": record.get("image_id", ""),
        "ResolvConfPath": _bound(spec, cdir, "/etc/resolv.conf"),
        "HostnamePath": _bound(spec, cdir, "/etc/hostname"),
        "HostsPath": _bound(spec, cdir, "/etc/hosts"),
        "LogPath": _log_path(record, cdir),
        "Name": "/" + record["name"],
        "RestartCount": record.get("restart_count") or 0,
        "Driver": record.get("driver", ""),
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config(record, spec),
        "GraphDriver": _graph_driver(record, spec, cdir),
    }
    if size is not None:
        obj["SizeRw"], obj["SizeRootFs"] = size
    obj["Mounts"] = [_docker_order(m) for m in record.get("mounts") or ()]
    obj["Config"] = config(record, spec)
    mode = network_mode(record, spec)
    obj["NetworkSettings"] = network_settings(mode, network_ports(record, spec, mode),
                                              _addresses(record, spec, mode))
    return obj


def _addresses(record: dict, spec: dict, mode: str) -> dict:
    """What is known without entering the namespace: slirp4netns always gives the
    container its network's .100, behind the gateway at .2 (pasta copies the host's
    addresses, which only the namespace itself knows)."""
    if mode != "slirp4netns" or record.get("status") not in ALIVE:
        return {}
    import ipaddress
    from rootless import jsonfast
    from rootless.runtime.config import NETWORK_OPTIONS
    try:
        options = jsonfast.loads((spec.get("annotations") or {}).get(NETWORK_OPTIONS) or "{}")
        net = ipaddress.IPv4Network(options.get("cidr") or "10.0.2.0/24", strict=False)
    except ValueError:
        return {}
    return {"IPAddress": str(net.network_address + 100), "Gateway": str(net.network_address + 2),
            "IPPrefixLen": net.prefixlen}


def _state(record: dict, pid: int) -> dict:
    status = record.get("status")
    word = state_string(record)
    return {
        "Status": word,
        "Running": status in ALIVE,
        "Paused": status == PAUSED,
        "Restarting": status == RESTARTING,
        "OOMKilled": bool(record.get("oom_killed")),
        "Dead": word == "dead",
        "Pid": pid if status in ALIVE else 0,
        "ExitCode": record.get("exit_code") or 0,
        "Error": (record.get("network_error") or "") if status in ALIVE else "",
        "StartedAt": rfc3339_nano(record.get("started")),
        "FinishedAt": rfc3339_nano(record.get("finished")),
    }


def _bound(spec: dict, cdir: str, destination: str) -> str:
    """The file of the container directory bound over ``destination`` ("" if none is)."""
    for m in spec.get("mounts") or []:
        if m.get("destination") == destination and m.get("type") == "bind" and m.get("source"):
            return os.path.join(cdir, m["source"])
    return ""


def _log_path(record: dict, cdir: str) -> str:
    if (record.get("log") or {}).get("driver", "json-file") == "none":
        return ""
    return os.path.join(cdir, record["id"] + "-json.log")


def _namespaces(spec: dict) -> List[str]:
    return [n.get("type") for n in (spec.get("linux") or {}).get("namespaces") or []]


def _shm_size(spec: dict) -> int:
    for m in spec.get("mounts") or []:
        if m.get("destination") == "/dev/shm":
            for option in m.get("options") or []:
                if option.startswith("size=") and option[5:].isdigit():
                    return int(option[5:])
    return DEFAULT_SHM


MOUNT_KEYS = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")


def _docker_order(mount: dict) -> dict:
    """A Mounts entry with its keys in Docker's order (records are saved sorted)."""
    return {k: mount[k] for k in MOUNT_KEYS if k in mount}


def host_config(record: dict, spec: dict) -> dict:
    """Docker's HostConfig: what the record kept as asked, the rest read from the spec."""
    asked = record.get("host_config") or {}
    linux = spec.get("linux") or {}
    kinds = _namespaces(spec)
    log = record.get("log") or {}
    restart = record.get("restart") or {}

    def private(kind: str, word: str) -> str:
        """Docker's word for a namespace of the container's own, "host" for the host's."""
        return word if kind in kinds else "host"
    resources = [("CpuShares", 0), ("Memory", 0), ("NanoCpus", 0), ("CgroupParent", ""),
                 ("BlkioWeight", 0), ("BlkioWeightDevice", []), ("BlkioDeviceReadBps", []),
                 ("BlkioDeviceWriteBps", []), ("BlkioDeviceReadIOps", []), ("BlkioDeviceWriteIOps", []),
                 ("CpuPeriod", 0), ("CpuQuota", 0), ("CpuRealtimePeriod", 0), ("CpuRealtimeRuntime", 0),
                 ("CpusetCpus", ""), ("CpusetMems", ""), ("Devices", []), ("DeviceCgroupRules", None),
                 ("DeviceRequests", None), ("MemoryReservation", 0), ("MemorySwap", 0),
                 ("MemorySwappiness", None), ("OomKillDisable", None), ("PidsLimit", None),
                 ("Ulimits", None), ("CpuCount", 0), ("CpuPercent", 0), ("IOMaximumIOps", 0),
                 ("IOMaximumBandwidth", 0)]
    hc = {
        "Binds": asked.get("Binds"),
        "ContainerIDFile": "",
        "LogConfig": {"Type": log.get("driver") or "json-file", "Config": dict(log.get("opts") or {})},
        "NetworkMode": network_mode(record, spec),
        "PortBindings": asked.get("PortBindings") or {},
        "RestartPolicy": {"Name": restart.get("name") or "no",
                          "MaximumRetryCount": restart.get("maximum_retry_count") or 0},
        "AutoRemove": bool(record.get("auto_remove")),
        "VolumeDriver": "",
        "VolumesFrom": asked.get("VolumesFrom"),
        "ConsoleSize": [0, 0],
        "CapAdd": asked.get("CapAdd"),
        "CapDrop": asked.get("CapDrop"),
        "CgroupnsMode": private("cgroup", "private"),
        "Dns": asked.get("Dns", []),
        "DnsOptions": asked.get("DnsOptions", []),
        "DnsSearch": asked.get("DnsSearch", []),
        "ExtraHosts": asked.get("ExtraHosts"),
        "GroupAdd": None,
        "IpcMode": asked.get("IpcMode") or private("ipc", "private"),
        "Cgroup": "",
        "Links": None,
        "OomScoreAdj": 0,
        "PidMode": asked.get("PidMode") or private("pid", ""),
        "Privileged": asked.get("Privileged", "maskedPaths" in linux and not linux["maskedPaths"]),
        "PublishAllPorts": bool(asked.get("PublishAllPorts")),
        "ReadonlyRootfs": asked.get("ReadonlyRootfs", bool((spec.get("root") or {}).get("readonly"))),
        "SecurityOpt": None,
        "UTSMode": private("uts", ""),
        "UsernsMode": asked.get("UsernsMode", ""),
        "ShmSize": _shm_size(spec),
        "Runtime": "",
        "Isolation": "",
    }
    hc.update((key, asked.get(key, default)) for key, default in resources)
    if asked.get("Mounts"):
        hc["Mounts"] = asked["Mounts"]
    if asked.get("Tmpfs"):
        hc["Tmpfs"] = asked["Tmpfs"]
    if asked.get("Devices"):
        hc["Devices"] = asked["Devices"]
    hc["MaskedPaths"] = list(linux.get("maskedPaths") or [])
    hc["ReadonlyPaths"] = list(linux.get("readonlyPaths") or [])
    if record.get("init"):
        hc["Init"] = True  # Docker's *bool: absent unless --init was given
    return hc


def _graph_driver(record: dict, spec: dict, cdir: str) -> dict:
    from rootless import jsonfast
    from rootless.runtime.config import LAYERS
    from rootless.storage.rootfs import graph_data
    try:
        lower = jsonfast.loads((spec.get("annotations") or {}).get(LAYERS) or "[]")
    except ValueError:
        lower = []
    name = record.get("driver", "")
    return {"Data": graph_data(name, cdir, lower), "Name": name}


def config(record: dict, spec: dict) -> dict:
    """Docker's Config: the image's settings with the options applied, as create kept
    them (``bundle.create.asked_config``); for an older record, what the spec says."""
    process = spec.get("process") or {}
    asked = record.get("config")
    if asked is None:
        asked = {"Env": list(process.get("env") or []), "Cmd": list(record.get("command") or []) or None,
                 "Tty": bool(process.get("terminal")), "OpenStdin": bool(record.get("interactive")),
                 "Labels": dict(record.get("labels") or {})}
    obj = {
        "Hostname": spec.get("hostname", ""),
        "Domainname": "",
        "User": asked.get("User", ""),
        "AttachStdin": asked.get("AttachStdin", False),
        "AttachStdout": asked.get("AttachStdout", False),
        "AttachStderr": asked.get("AttachStderr", False),
    }
    if asked.get("ExposedPorts"):
        obj["ExposedPorts"] = asked["ExposedPorts"]  # Docker's omitempty: absent when none
    obj.update({
        "Tty": asked.get("Tty", False),
        "OpenStdin": asked.get("OpenStdin", False),
        "StdinOnce": asked.get("StdinOnce", False),
        "Env": asked.get("Env") or [],
        "Cmd": asked.get("Cmd"),
        "Image": record.get("image", ""),
        "Volumes": None,
        "WorkingDir": asked.get("WorkingDir", ""),
        "Entrypoint": asked.get("Entrypoint"),
        "OnBuild": None,
        "Labels": asked.get("Labels") or {},
    })
    if record.get("stop_signal"):
        obj["StopSignal"] = record["stop_signal"]  # Docker's omitempty: absent unless set
    return obj


def network_mode(record: dict, spec: dict) -> str:
    """``host`` (the host's network namespace), or ``none`` when the bundle gives the
    container a network namespace of its own (``--network none``)."""
    kinds = [n.get("type") for n in ((spec or {}).get("linux") or {}).get("namespaces") or []]
    return record.get("network") or ("none" if "network" in kinds else "host")


def network_ports(record: dict, spec: dict, mode: str) -> dict:
    """NetworkSettings.Ports: while the container runs with a network of its own, every
    exposed port (null when not published) and the bindings the runtime made, which it
    keeps in ``record["ports"]`` (``network.ports``); else ``{}``, as Docker shows a
    container that is not running or shares another's network."""
    if record.get("status") not in ALIVE or mode == "host" or mode.startswith("container:"):
        return {}
    from rootless import jsonfast
    from rootless.runtime.config import EXPOSED
    try:
        exposed = jsonfast.loads((spec.get("annotations") or {}).get(EXPOSED) or "[]")
    except ValueError:
        exposed = []
    exposed = exposed or sorted((record.get("config") or {}).get("ExposedPorts") or {})
    if not exposed and not record.get("ports"):
        return {}
    from rootless.network import ports
    return ports.network_settings_ports(exposed, ports.from_json(record.get("ports")))


def network_settings(mode: str, ports: Optional[dict] = None, addresses: Optional[dict] = None) -> dict:
    """Docker's NetworkSettings: one endpoint, named for the mode, with no sandbox;
    ``ports`` is ``network_ports``'s, ``addresses`` (IPAddress, Gateway, IPPrefixLen)
    ``_addresses``'."""
    addresses = addresses or {}
    endpoint = dict(ENDPOINT_FIELDS)
    endpoint.update(addresses)
    return {
        "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": ports or {},
        "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
        "Networks": {mode: endpoint},
        **addresses,
    }


def inspect_container(containers, record: dict, size: Optional[Tuple[int, int]] = None) -> dict:
    """``container_json`` of ``record`` (a ``state.Containers`` record, settled), with its
    bundle read and its first process checked (pid and start time) here."""
    from rootless import jsonfast
    from rootless.runtime import state
    cdir = containers.dir(record["id"])
    try:
        with open(os.path.join(cdir, "config.json")) as f:
            spec = jsonfast.load(f)
    except (OSError, ValueError):
        spec = None  # a container being removed: shown from its record alone
    pid = record.get("pid") or 0
    if not (record.get("status") in ALIVE and pid and state.first_process_alive(record)):
        pid = 0
    return container_json(record, spec if isinstance(spec, dict) else None, cdir, pid, size)
