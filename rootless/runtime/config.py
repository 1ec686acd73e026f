"""An OCI bundle as the runtime reads it: ``config.json`` is its only input.

The runtime acts on the runtime spec's own fields (``root``, ``mounts``, ``process``,
``hostname``, ``linux.namespaces``, ``linux.uidMappings``/``gidMappings``,
``maskedPaths``/``readonlyPaths``) and, for what the spec has no field for, on these
annotations (all optional; a hand-written bundle needs none of them):

==============================  ===========================================================
``io.rootless.idmap``           id mapping strategy: ``subuid`` or ``single-uid`` (default:
                                ``subuid`` when a map has more than one id)
``io.rootless.rootfs.driver``   ``overlay``, ``fuse-overlayfs`` or ``copy``: who provides
                                ``root.path``; absent: ``root.path`` is a ready directory
``io.rootless.rootfs.layers``   JSON list of the image's layer directories, lowest first
``io.rootless.rootfs.volatile`` ``true``: the writable layer is thrown away with the
                                container (``--rm``), so kernel overlayfs mounts it
                                ``volatile``: its unmount does not sync the whole file
                                system under it (``storage.rootfs.Overlay``)
``io.rootless.owners``          file (in the bundle) of image file owners to apply once,
                                when sub-ids are mapped (first start)
``io.rootless.init``            ``true``: a small init is pid 1 (``--init``)
``io.rootless.ports``           JSON list of ``[host_ip, host_port, container_port, proto]``:
                                the ports to publish (``-p``, and ``-P``'s with host port
                                0 = any free one; host_ip "" = every IPv4 address), see
                                ``network.ports``; absent: none
``io.rootless.exposed``         JSON list of ``"80/tcp"``: the exposed ports (the image's
                                EXPOSE, ``--expose``, every ``-p`` container port)
``io.rootless.network``         ``network.modes``'s kind: ``slirp4netns`` or ``pasta`` start
                                that helper for the container's network namespace;
                                ``container``: join another container's; absent: ``none``
                                with a network namespace in linux.namespaces, else ``host``
``io.rootless.network.options`` JSON object: the helper's options (``network.helper``)
``io.rootless.port-bypass``     ``false``: the published TCP ports are relayed even where
                                the server could be handed the host's listener
                                (``network.bypass``; set when the container is created with
                                ROOTLESS_PORT_BYPASS=0 in the environment)
``io.rootless.network.container``
                                the ID of the container whose user and network
                                namespaces ``container`` joins (the caller resolves it to
                                a running pid: ``runtime.network.join``)
``io.rootless.cgroup``          JSON object: the container's own cgroup, for its limits
                                (``linux.resources.unified``): ``strategy`` (``cgroupfs``
                                or ``systemd``, cgroups.detect), ``parent`` (the directory
                                it is made under), ``below`` (--cgroup-parent's path under
                                it); absent: no cgroup of its own
``io.rootless.copyup``          JSON list of ``[destination, volume directory]``: volumes
                                to fill from the image's content at ``destination`` before
                                they are mounted, if they are empty (Docker's copy on first
                                use)
==============================  ===========================================================

``linux.sysctl`` is applied in the container's namespaces before its command runs (keys
under /proc/sys; ``network.modes.sysctls`` checks what ``create`` writes there).

Relative paths (``root.path``, bind mount sources, the owners file) are relative to the
bundle directory, as the runtime spec says.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List

from rootless import jsonfast
from rootless.errors import RootlessError, Unsupported

IDMAP = "io.rootless.idmap"
DRIVER = "io.rootless.rootfs.driver"
LAYERS = "io.rootless.rootfs.layers"
VOLATILE = "io.rootless.rootfs.volatile"
SQUASH = "io.rootless.rootfs.squash"  # "true": the layers' owners shown as root's (fuse-overlayfs)
OWNERS = "io.rootless.owners"
INIT = "io.rootless.init"
PORTS = "io.rootless.ports"
EXPOSED = "io.rootless.exposed"
NETWORK = "io.rootless.network"
NETWORK_OPTIONS = "io.rootless.network.options"
COPYUP = "io.rootless.copyup"
CGROUP = "io.rootless.cgroup"
NETWORK_CONTAINER = "io.rootless.network.container"
PID_CONTAINER = "io.rootless.pid.container"  # --pid container:NAME: its ID (runtime.joins)
PORT_BYPASS = "io.rootless.port-bypass"
STOP_SIGNAL = "org.opencontainers.image.stopSignal"


class Bundle:
    """``config.json`` of the bundle in ``path``, checked for what the runtime needs."""

    def __init__(self, path: str, spec: dict):
        self.dir, self.spec = path, spec
        linux = spec.get("linux") or {}
        self.annotations = spec.get("annotations") or {}
        self.namespaces = self._namespaces(linux.get("namespaces") or [])
        self.uid_map = linux.get("uidMappings") or _own("uid")
        self.gid_map = linux.get("gidMappings") or _own("gid")
        several = any(m.get("size", 1) > 1 for m in self.uid_map + self.gid_map)
        self.idmap = self.annotations.get(IDMAP) or ("subuid" if several else "single-uid")
        self.driver = self.annotations.get(DRIVER) or None
        self.layers: List[str] = jsonfast.loads(self.annotations.get(LAYERS) or "[]")
        self.volatile = self.annotations.get(VOLATILE) == "true"
        self.squash = self.annotations.get(SQUASH) == "true"
        self.root = self.path((spec.get("root") or {}).get("path") or "rootfs")
        self.owners = self.path(self.annotations[OWNERS]) if self.annotations.get(OWNERS) else None
        self.init = self.annotations.get(INIT) == "true"
        self.process = spec.get("process") or {}
        if not self.process.get("args"):
            raise RootlessError("the bundle's config.json has no process.args")
        self.tty = bool(self.process.get("terminal"))
        self.stop_signal = self.annotations.get(STOP_SIGNAL) or "SIGTERM"
        self.ports = self._ports()
        self.exposed: List[str] = jsonfast.loads(self.annotations.get(EXPOSED) or "[]")
        self.network = self.annotations.get(NETWORK) or ("none" if "network" in self.namespaces else "host")
        self.network_options = jsonfast.loads(self.annotations.get(NETWORK_OPTIONS) or "{}")
        self.network_container = self.annotations.get(NETWORK_CONTAINER) or ""
        if self.network == "container" and not self.network_container:
            raise RootlessError("config.json: %s is container but %s names no container" % (NETWORK, NETWORK_CONTAINER))
        self.pid_container = self.annotations.get(PID_CONTAINER) or ""
        self.sysctl = linux.get("sysctl") or {}
        self.copyup = jsonfast.loads(self.annotations.get(COPYUP) or "[]")
        self.cgroup = jsonfast.loads(self.annotations.get(CGROUP) or "{}")
        self.resources = (linux.get("resources") or {}).get("unified") or {}
        # Set by the caller before launch.start for ``container`` networks and pid
        # namespaces: fds of the other container's namespaces (runtime.joins).
        self.join = None
        # The port forwarder's intake when its TCP ports go to the server directly
        # (network.bypass): this container's own, or (``container``) the other's.
        self.intake = ""
        if self.ports:
            from rootless.network import bypass
            if bypass.enabled(self):
                self.intake = bypass.intake_path(self.dir)

    @property
    def helper(self) -> str:
        """The network helper to start with the container ("" for none)."""
        return self.network if self.network in ("slirp4netns", "pasta") else ""

    @classmethod
    def load(cls, path: str) -> "Bundle":
        try:
            with open(os.path.join(path, "config.json")) as f:
                spec = jsonfast.load(f)
        except (OSError, ValueError) as e:
            raise RootlessError("cannot read the bundle's config.json in %s: %s" % (path, e))
        return cls(path, spec)

    def path(self, rel: str) -> str:
        return os.path.join(self.dir, rel)

    def _ports(self) -> list:
        """The PortBindings to publish (``network.ports``, imported only when there are any)."""
        if not self.annotations.get(PORTS):
            return []
        from rootless.network import ports
        try:
            return ports.from_json(self.annotations[PORTS])
        except (ValueError, TypeError) as e:
            raise RootlessError("bad %s annotation in config.json: %s" % (PORTS, e))

    def _namespaces(self, entries: List[dict]) -> List[str]:
        from rootless.linux import ns
        kinds = []
        for entry in entries:
            kind = entry.get("type")
            if kind not in ns.FLAGS:
                raise RootlessError("unknown namespace type %r in config.json" % kind)
            if entry.get("path"):
                raise Unsupported("joining the %s namespace at %s is not supported yet" % (kind, entry["path"]))
            kinds.append(kind)
        for needed in ("user", "mount"):
            if needed not in kinds:
                raise Unsupported("rootless needs a new %s namespace (add {\"type\": \"%s\"} to "
                                  "linux.namespaces)" % (needed, needed))
        return kinds


def _own(kind: str) -> List[dict]:
    """Without maps in config.json: root in the container is you (one id)."""
    outside = os.getuid() if kind == "uid" else os.getgid()
    return [{"containerID": 0, "hostID": outside, "size": 1}]
