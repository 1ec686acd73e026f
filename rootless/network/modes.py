"""``--network``: which network a container gets, chosen once at ``create``.

=========================  ================================================================
``host``                   the host's network namespace (nothing to start; ``-p`` discarded)
``none``                   a network namespace of its own with only ``lo``
``slirp4netns[:k=v,...]``  its own namespace, with outbound TCP/UDP through slirp4netns
                           (a user-mode TCP/IP stack on the host side of a tap device)
``pasta[:ARG,...]``        its own namespace, with outbound access through pasta (Debian's
                           ``passt`` package), which copies the host's addresses and routes
``container:NAME``         the network namespace of a running container (and so its user
                           namespace: a namespace can only be joined from its owner's)
``bridge`` / no option     Docker's default: a private network with the best helper found
=========================  ================================================================

The default is **slirp4netns when it is there, else pasta**: in both, published TCP ports
go to the container's server directly (``network.bypass``), at about the host loopback's
rate, so the helper only matters for outbound traffic and for the start-up time, which every
``run`` pays. slirp4netns is ready in about 6 ms here, pasta in about 20 ms (docs/benchmarks.md, s12,
has `run --rm` on the default network beside podman's). With neither helper (or with a ``/dev/net/tun`` this user cannot
open), the default is the host's network, with a one-line notice at create, and ``info``
names what is missing and how to install it.

Published ports work in every mode with a namespace of its own, helpers or not: the
forwarder needs nothing but the namespace.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

from rootless.errors import UsageError
from rootless.patterns import Pattern

HELPERS = ("slirp4netns", "pasta")  # the default's order of preference (see above)
PACKAGES = {"slirp4netns": "slirp4netns", "pasta": "passt"}
PRIVATE = ("none",) + HELPERS  # the modes with a network namespace of the container's own
TUN = "/dev/net/tun"


class Mode:
    """A parsed ``--network``: ``kind`` (host, none, slirp4netns, pasta, container, or ""
    for the default), ``options`` (slirp4netns: {key: value}; pasta: {"args": [...]}),
    ``container`` (the NAME of ``container:NAME``)."""

    def __init__(self, kind: str, options: Optional[dict] = None, container: str = ""):
        self.kind, self.options, self.container = kind, options or {}, container
        self.default = False  # chosen by ``resolve`` for a container that asked for none

    def __repr__(self) -> str:
        return "Mode(%r, %r, %r)" % (self.kind, self.options, self.container)


def parse(value: str) -> Mode:
    """``--network VALUE`` (a one-line UsageError, exit 125, for what rootless cannot do)."""
    kind, sep, rest = (value or "").partition(":")
    if kind in ("", "default", "bridge") and not sep:
        return Mode("")
    if kind in ("host", "none") and not sep:
        return Mode(kind)
    if kind == "container":
        if not rest:
            raise UsageError("invalid --network %r: name the container (container:NAME)" % value)
        return Mode("container", container=rest)
    if kind == "slirp4netns":
        return Mode(kind, slirp_options(rest) if sep else {})
    if kind == "pasta":
        options = {"args": [a for a in rest.split(",") if a]} if sep else {}
        from rootless.network import helper
        helper.check("pasta", options)
        return Mode(kind, options)
    raise UsageError("network %s not found: rootless has no user-defined networks; use --network "
                     "host, none, slirp4netns[:OPTIONS], pasta[:OPTIONS] or container:NAME" % value)


def slirp_options(text: str) -> Dict[str, str]:
    """``k=v,k=v`` of ``slirp4netns:``, checked by ``network.helper.check`` (a bad key or
    value names itself and the valid ones)."""
    options = {}
    for item in text.split(","):
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep:
            from rootless.network.helper import SLIRP_OPTIONS
            raise UsageError("invalid slirp4netns option %r: use KEY=VALUE with KEY one of %s"
                             % (item, ", ".join(SLIRP_OPTIONS)))
        options[key] = val
    from rootless.network import helper
    helper.check("slirp4netns", options)
    return options


def tun_problem() -> str:
    """Why this user cannot use ``/dev/net/tun`` (both helpers need it), or ""."""
    if not os.path.exists(TUN):
        return "%s does not exist (load the tun module: modprobe tun)" % TUN
    if not os.access(TUN, os.R_OK | os.W_OK):
        return ("%s is not open to you (mode %o; most distributions make it 0666: "
                "ask root to chmod 0666 %s)" % (TUN, os.stat(TUN).st_mode & 0o777, TUN))
    return ""


def find(name: str) -> Optional[str]:
    """The helper ``name`` on PATH, or None (shutil.which's walk; importing shutil costs
    every run with the default network ~2 ms)."""
    for entry in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(entry or ".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def probe() -> Tuple[str, str, str]:
    """(choice, reason, remedy) of the default network, as ``info`` shows them."""
    found = [h for h in HELPERS if find(h)]
    problem = tun_problem() if found else ""
    if found and not problem:
        others = [h for h in found[1:]]
        return (found[0], "a private network through %s%s" % (
            found[0], " (%s also found)" % ", ".join(others) if others else ""), "")
    if found:
        return ("host", "the container shares the host's network: %s found, but %s" % (
            " and ".join(found), problem), "ask root to chmod 0666 %s, or use --network none" % TUN)
    return ("host", "the container shares the host's network: neither slirp4netns nor pasta is "
            "installed", "install slirp4netns or passt (apt-get install slirp4netns), or use --network none "
            "(published ports work there)")


def resolve(mode: Mode) -> Tuple[Mode, str]:
    """The mode a container is created with (the default decided) and the notice to print."""
    if mode.kind:
        if mode.kind in HELPERS:
            check_helper(mode.kind)
        return mode, ""
    kind, reason, _ = probe()  # the first helper found and usable, else "host" and why
    notice = reason if kind == "host" else ""
    chosen = Mode(kind)
    chosen.default = True
    return chosen, notice and "rootless: %s; --network none gives it a private network" % notice


def without_root(mode: Mode) -> Tuple[Mode, str]:
    """slirp4netns needs a root in the container's user namespace (it sets its ids to 0
    there); with ``--userns keep-id`` and no subuid ranges there is none. The default then
    takes pasta (which needs no root) or else the host's network, with a notice; an explicit
    slirp4netns is refused."""
    if mode.kind != "slirp4netns":
        return mode, ""
    if not getattr(mode, "default", False):
        raise UsageError("--network slirp4netns needs uid 0 in the container's user namespace, which "
                         "--userns keep-id without subuid ranges does not have: use --network pasta or none")
    if find("pasta"):
        return Mode("pasta"), ""
    return Mode("host"), ("rootless: slirp4netns needs uid 0 in the container, which --userns keep-id "
                          "without subuid ranges does not have: the container shares the host's network")


def check_helper(kind: str) -> None:
    """A clear error at create when a mode's helper cannot run here (at a start,
    ``network.helper.start`` names what is missing)."""
    from rootless.errors import RootlessError
    if not find(kind):
        raise RootlessError("--network %s: %s is not installed (install the %s package), or use "
                            "--network none" % (kind, kind, PACKAGES[kind]))
    problem = tun_problem()
    if problem:
        raise RootlessError("--network %s: %s" % (kind, problem))


def nameservers(kind: str, options: dict) -> Optional[List[str]]:
    """What the container's /etc/resolv.conf names as its resolver in ``kind``, or None for
    the host's: the helper's DNS forwarder (``network.helper.nameserver``: slirp4netns's
    .3 of its network, pasta's 169.254.1.1); in none, host and container modes the host's
    file is copied, as Docker does."""
    if kind not in HELPERS:
        return None
    from rootless.network import helper
    return [helper.nameserver(kind, options)]


# Docker's default for a network namespace of the container's own: every group may open
# ICMP echo sockets, so ``ping`` works without CAP_NET_RAW.
PING_GROUPS = "net.ipv4.ping_group_range"
# What --sysctl may set: the container's own namespaces' keys (Docker's daemon's list).
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
               "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


_SYSCTL_KEY = Pattern(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+\Z")


def sysctls(items, kind: str, gid_map: List[dict], ipc: str = "") -> Dict[str, str]:
    """``--sysctl KEY=VALUE`` entries checked as Docker's daemon checks them (net.* needs a
    network namespace of the container's own; kernel.msg*/sem/shm* and fs.mqueue.* are the
    IPC namespace's, so not with ``--ipc host``: ``ipc``), plus the ping default for a
    private network. The key becomes a path under /proc/sys in the keeper, so only dotted
    names of plain words pass."""
    out = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not _SYSCTL_KEY.match(key):
            raise UsageError("invalid --sysctl %r: use KEY=VALUE, KEY such as net.ipv4.ip_forward" % item)
        if key.startswith("net."):
            if kind not in PRIVATE:
                raise UsageError("sysctl %r is not allowed in the %s network namespace: it needs "
                                 "a network namespace of the container's own" % (item, kind or "host"))
        elif key not in IPC_SYSCTLS and not key.startswith("fs.mqueue."):
            raise UsageError("sysctl %r is not allowed: only net.*, fs.mqueue.* and the IPC "
                             "namespace's kernel.* keys are the container's own" % item)
        elif ipc == "host":
            raise UsageError("sysctl %r is not allowed with --ipc host: it would be the host's" % key)
        out[key] = val
    if kind in PRIVATE and PING_GROUPS not in out:
        out[PING_GROUPS] = ping_groups(gid_map)
    return out


def ping_groups(gid_map: List[dict]) -> str:
    """Docker's ``0 2147483647``, cut to the groups the container has: the kernel refuses
    a range whose ends are not mapped in the namespace, so it runs from the lowest mapped
    group to the highest (``0 0`` in single-uid mode; ``1000 1000`` for a single-uid
    ``--userns keep-id`` of gid 1000)."""
    if not gid_map:
        return "0 0"
    low = min(m["containerID"] for m in gid_map)
    top = max(m["containerID"] + m.get("size", 1) - 1 for m in gid_map)
    return "%d %d" % (low, min(top, 2147483647))
