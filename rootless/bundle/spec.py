"""An OCI runtime-spec ``config.json`` from an image config and ``run`` options (pure).

This is Docker's translation: Entrypoint/Cmd and ``--entrypoint``, Env merging with a
default PATH, WorkingDir, the user, hostname, the default capability set, the mounts of a
fresh /proc, /dev, /sys, and the masked and read-only paths. Field names are the OCI
runtime spec's, so ``runtime/`` can be driven by a bundle written by hand.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

from rootless.bundle.users import User
from rootless import environ
from rootless.errors import UsageError

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capabilities (moby's oci/caps defaults).
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
ALL_CAPS = DEFAULT_CAPS + (
    "CAP_DAC_READ_SEARCH", "CAP_LINUX_IMMUTABLE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_LEASE", "CAP_AUDIT_CONTROL", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
# network.modes.PRIVATE (not imported: spec stays free of the network package): the modes
# with a network namespace of the container's own.
PRIVATE_NETWORKS = ("none", "slirp4netns", "pasta")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


class RunOptions(namedtuple("RunOptions", "args entrypoint env workdir hostname tty read_only privileged "
                            "cap_add cap_drop labels network",
                            defaults=((), None, (), None, "", False, False, False, (), (), None, "host"))):
    """What ``create``/``run`` were asked for, already parsed (see cli). A namedtuple, not
    a dataclass (importing dataclasses costs ~9 ms of every ``run``) nor a typing one
    (typing, ~2 ms). The fields and their defaults:

    args: Tuple[str, ...] = ()
    entrypoint: Optional[str] = None  # None: the image's; "": none
    env: Tuple[str, ...] = ()  # -e and --env-file entries, in order
    workdir: Optional[str] = None
    hostname: str = ""
    tty: bool = False
    read_only: bool = False
    privileged: bool = False
    cap_add: Tuple[str, ...] = ()
    cap_drop: Tuple[str, ...] = ()
    labels: Optional[Dict[str, str]] = None
    network: str = "host"  # network.modes's kind: host, none, slirp4netns, pasta or container
    """

    __slots__ = ()


def command_parts(image_config: dict, opts: RunOptions) -> Tuple[List[str], List[str]]:
    """(entrypoint, cmd) by Docker's rule: the image's entrypoint unless --entrypoint; the
    args, or the image's Cmd when no args are given (an explicit --entrypoint drops the
    image's Cmd). What ``inspect`` shows as Config.Entrypoint and Config.Cmd."""
    if opts.entrypoint is None:
        entry = list(image_config.get("Entrypoint") or [])
        cmd = list(opts.args) if opts.args else list(image_config.get("Cmd") or [])
    else:
        entry = [opts.entrypoint] if opts.entrypoint else []
        cmd = list(opts.args)
    return entry, cmd


def command(image_config: dict, opts: RunOptions) -> List[str]:
    """The argv the container runs: entrypoint + cmd (``command_parts``)."""
    entry, cmd = command_parts(image_config, opts)
    argv = entry + cmd
    if not argv:
        raise UsageError("no command specified: the image has no Cmd or Entrypoint; give one "
                         "after the image name")
    return argv


def environment(image_config: dict, opts: RunOptions, user: User, host_env: Dict[str, str]) -> List[str]:
    """Image Env, then -e/--env-file (later wins), with PATH, HOSTNAME, HOME and TERM."""
    env = environ.to_dict(image_config.get("Env"))
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOSTNAME"] = opts.hostname
    environ.apply_flags(env, opts.env, host_env)
    if opts.tty:
        env.setdefault("TERM", "xterm")
    env.setdefault("HOME", user.home if user.name else "/root" if user.uid == 0 else "/")
    return environ.to_list(env)


def env_file_lines(paths) -> List[str]:
    """The entries of ``--env-file`` files (``run``, ``create``, ``exec``): one per line,
    blank lines and ``#`` comments left out."""
    env: List[str] = []
    for path in paths:
        try:
            with open(path) as f:
                env += [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
        except OSError as e:
            raise UsageError("cannot read --env-file %s: %s" % (path, e.strerror))
    return env


def config_env(image_config: dict, opts: RunOptions, host_env: Dict[str, str]) -> List[str]:
    """Docker's Config.Env: the image's Env with -e/--env-file replacing or appending (a
    bare ``-e NAME`` takes the host's value, or is dropped). PATH, HOSTNAME, HOME and TERM
    are the runtime's additions (``environment``), not part of it, as in Docker."""
    env = environ.to_dict(image_config.get("Env"))
    environ.apply_flags(env, opts.env, host_env)
    return environ.to_list(env)


def working_dir(image_config: dict, opts: RunOptions) -> str:
    cwd = opts.workdir or image_config.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise UsageError("the working directory %r is invalid: it must be an absolute path" % cwd)
    return cwd


def capabilities(opts: RunOptions) -> List[str]:
    """Docker's default set, --cap-add/--cap-drop applied (names with or without CAP_)."""
    if opts.privileged:
        return list(ALL_CAPS)
    caps = list(DEFAULT_CAPS)
    for name in opts.cap_drop:
        if name.upper() == "ALL":
            caps = []
        else:
            cap = _cap_name(name)
            caps = [c for c in caps if c != cap]
    for name in opts.cap_add:
        if name.upper() == "ALL":
            caps = list(ALL_CAPS)
        elif _cap_name(name) not in caps:
            caps.append(_cap_name(name))
    return caps


def _cap_name(name: str) -> str:
    cap = name.upper()
    cap = cap if cap.startswith("CAP_") else "CAP_" + cap
    if cap not in ALL_CAPS:
        raise UsageError("unknown capability %r (see capabilities(7))" % name)
    return cap


def stop_signal(name: str) -> str:
    """``--stop-signal`` as given, once it names a signal (as Docker checks it: a number, or a
    name with or without SIG, any case, RTMIN+n and RTMAX-n included); else a usage error."""
    import signal
    text = name.upper()
    text = text[3:] if text.startswith("SIG") else text
    if name.isdigit():
        ok = 0 < int(name) < signal.NSIG
    elif text.startswith(("RTMIN+", "RTMAX-")) and text[6:].isdigit():
        ok = int(text[6:]) <= signal.SIGRTMAX - signal.SIGRTMIN
    else:
        ok = text in ("RTMIN", "RTMAX") or isinstance(getattr(signal, "SIG" + text, None), signal.Signals)
    if not ok:
        raise UsageError("invalid --stop-signal %r: name a signal (SIGTERM, TERM or 15)" % name)
    return name


def mounts(opts: RunOptions) -> List[dict]:
    """The kernel file systems Docker gives every container, in mount order."""
    sys_options = ["nosuid", "noexec", "nodev", "ro"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
    ]


def generate(image_config: dict, opts: RunOptions, user: User,
             host_env: Optional[Dict[str, str]] = None) -> dict:
    """The whole config.json for one container (``image_config`` is the image config's
    ``config`` object: Env, Cmd, Entrypoint, WorkingDir, ...)."""
    image_config = image_config or {}
    caps = capabilities(opts)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": opts.tty,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)},
            "args": command(image_config, opts),
            "env": environment(image_config, opts, user, host_env or {}),
            "cwd": working_dir(image_config, opts),
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": not opts.privileged,
        },
        "root": {"path": "rootfs", "readonly": opts.read_only},
        "hostname": opts.hostname,
        "mounts": mounts(opts),
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user", "cgroup")
                           + (("network",) if opts.network in PRIVATE_NETWORKS else ())],
            "maskedPaths": [] if opts.privileged else list(MASKED_PATHS),
            "readonlyPaths": [] if opts.privileged else list(READONLY_PATHS),
        },
        "annotations": {"org.opencontainers.image.stopSignal": image_config.get("StopSignal") or "SIGTERM",
                        **{"label." + k: v for k, v in sorted((opts.labels or {}).items())}},
    }
