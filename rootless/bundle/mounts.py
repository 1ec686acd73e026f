"""The user's mounts: ``-v``/``--volume``, ``--mount`` and ``--tmpfs``, parsed with Docker's
syntax and errors, and turned into the bundle's mount entries.

What each spelling means (Docker's rules):

* ``-v /ctr`` is an anonymous volume; ``-v SRC:/ctr[:MODE]`` is a bind mount when SRC is
  an absolute path (``./x`` and ``../x`` are made absolute first, as Docker's CLI does),
  else SRC names a volume. MODE is a comma list of ``ro``/``rw``, a propagation
  (``private``, ``rprivate``, ``slave``, ``rslave``, ``shared``, ``rshared``), ``nocopy``,
  and the SELinux and consistency words (``z``, ``Z``, ``consistent``, ``cached``,
  ``delegated``), which mean nothing here and are accepted.
* ``--mount type=bind|volume|tmpfs,source=...,target=...,readonly,...`` with Docker's
  keys; ``type`` defaults to volume.
* ``--tmpfs /ctr[:OPTIONS]``, OPTIONS being mount(8) options (``size=64m,mode=1770``).

A bind source must exist: unlike Docker's ``-v``, which creates a missing host directory
(as root, on the daemon's host), nothing on the host is made here that the user did not
make. A target must be absolute and not ``/``; two mounts may not share a target.

Every target is resolved inside the container's root by the runtime
(``runtime.mounts.secure_join``): an image whose /data is a symlink to /etc gets the mount
on its own /etc, never on a host path. A read-only bind is read-only with every mount
below it (``mount_setattr`` with ``AT_RECURSIVE`` where the kernel has it).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict, List, Optional

from rootless import jsonfast
from rootless.errors import NotFound, UsageError
from rootless.patterns import Pattern

VOLUME_NAME = Pattern(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")  # Docker's (Go's $ is our \Z)
_MODE = Pattern(r"[0-7]{1,4}\Z", plain="01234567", limit=4)
PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared")
IGNORED_MODES = ("z", "Z", "consistent", "cached", "delegated")
# Docker's defaults for --tmpfs (daemon/oci_linux.go): no setuid programs, no devices,
# nothing executed from it unless "exec" is asked.
TMPFS_DEFAULTS = ("nosuid", "nodev", "noexec")
TMPFS_OPTIONS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime",
                 "relatime", "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime",
                 "sync", "async", "dirsync", "mand", "nomand"}
TMPFS_KEYS = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "huge", "mpol"}


class Mount:
    """One asked mount. ``kind``: bind, volume or tmpfs; ``source``: the host path (bind),
    the volume's name ("" for an anonymous one), or "" (tmpfs)."""

    __slots__ = ("kind", "source", "target", "readonly", "propagation", "nocopy", "options", "given")

    def __init__(self, kind: str, source: str, target: str, readonly: bool = False,
                 propagation: str = "", nocopy: bool = False, options: Optional[List[str]] = None,
                 given: str = ""):
        self.kind, self.source, self.target, self.readonly = kind, source, target, readonly
        self.propagation, self.nocopy, self.options, self.given = propagation, nocopy, list(options or ()), given

    def __repr__(self) -> str:
        return "Mount(%r, %r, %r, ro=%r)" % (self.kind, self.source, self.target, self.readonly)


def _invalid_spec(raw: str) -> UsageError:
    return UsageError("invalid volume specification: '%s'" % raw)


def _target(kind: str, target: str, raw: str) -> str:
    if not target:
        raise _invalid_spec(raw)
    if not target.startswith("/"):
        raise UsageError("invalid mount config for type \"%s\": invalid mount path: '%s' mount path must be "
                         "absolute" % (kind, target))
    normal = os.path.normpath(target)
    if normal in ("/", "//"):
        raise UsageError("invalid specification: destination can't be '/'")
    return normal


def parse_volume(raw: str, cwd: Optional[str] = None) -> Mount:
    """One ``-v`` value."""
    parts = raw.split(":")
    mode = ""
    if len(parts) == 1:
        source, target = "", parts[0]
    elif len(parts) == 2:
        if _is_mode(parts[1]):
            raise _invalid_spec(raw)  # a destination and a mode: volumes have no mode
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise _invalid_spec(raw)
    if source.startswith(".") or source == "~" or source.startswith("~/"):
        if source.startswith("~"):
            source = os.path.expanduser(source)
        source = os.path.abspath(os.path.join(cwd or os.getcwd(), source))
    kind = "bind" if source.startswith("/") else "volume"
    if kind == "volume" and source and not VOLUME_NAME.match(source):
        raise UsageError("\"%s\" includes invalid characters for a local volume name, only "
                         "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
                         "directory, use absolute path" % source)
    mount = Mount(kind, os.path.normpath(source) if kind == "bind" else source,
                  _target(kind, target, raw), given=raw)
    if mode:
        if not _is_mode(mode):
            raise UsageError("invalid mode: %s" % mode)
        words = mode.split(",")
        mount.readonly = "ro" in words
        mount.propagation = next((w for w in words if w in PROPAGATIONS), "")
        mount.nocopy = "nocopy" in words
        if mount.propagation and kind != "bind":
            raise UsageError("invalid mode: %s (a propagation is for bind mounts)" % mode)
        if mount.nocopy and kind != "volume":
            raise UsageError("invalid mode: %s (nocopy is for volumes)" % mode)
    return mount


def _is_mode(text: str) -> bool:
    """Docker's rule: each word known, at most one of rw/ro, of the propagations, of nocopy."""
    words = text.split(",")
    if not all(w in ("ro", "rw", "nocopy") + PROPAGATIONS + IGNORED_MODES for w in words):
        return False
    return (sum(w in ("ro", "rw") for w in words) <= 1 and sum(w in PROPAGATIONS for w in words) <= 1
            and words.count("nocopy") <= 1)


def _bool(key: str, value: Optional[str], raw: str) -> bool:
    if value is None:
        return True
    low = value.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise UsageError("invalid argument \"%s\" for \"--mount\" flag: invalid value for %s: %s" % (raw, key, value))


def parse_mount(raw: str) -> Mount:
    """One ``--mount`` value."""
    fields: Dict[str, Optional[str]] = {}
    for field in raw.split(","):
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not eq and key not in ("readonly", "ro", "volume-nocopy"):
            raise UsageError("invalid argument \"%s\" for \"--mount\" flag: invalid field '%s' must be a "
                             "key=value pair" % (raw, field))
        fields[key] = value if eq else None
    known = {"type", "source", "src", "target", "dst", "destination", "readonly", "ro", "bind-propagation",
             "volume-nocopy", "volume-driver", "volume-label", "volume-opt", "tmpfs-size", "tmpfs-mode",
             "consistency", "bind-nonrecursive", "bind-recursive"}
    for key in fields:
        if key not in known:
            raise UsageError("invalid argument \"%s\" for \"--mount\" flag: unexpected key '%s' in '%s'"
                             % (raw, key, next(f for f in raw.split(",") if f.strip().lower().startswith(key))))
    kind = (fields.get("type") or "volume").lower()
    if kind not in ("bind", "volume", "tmpfs"):
        raise UsageError("invalid argument \"%s\" for \"--mount\" flag: mount type '%s' is not supported "
                         "(bind, volume or tmpfs)" % (raw, kind))
    source = next((fields[k] for k in ("source", "src") if fields.get(k) is not None), "") or ""
    target = next((fields[k] for k in ("target", "dst", "destination") if fields.get(k) is not None), "") or ""
    if not target:
        raise UsageError("invalid argument \"%s\" for \"--mount\" flag: target is required" % raw)
    readonly = any(_bool(k, fields[k], raw) for k in ("readonly", "ro") if k in fields)
    for key in fields:
        owner = key.split("-")[0]
        if owner in ("bind", "volume", "tmpfs") and owner != kind:
            raise UsageError("invalid mount config for type \"%s\": field %s is not allowed" % (kind, key))
    if kind == "bind":
        if not source:
            raise UsageError("invalid mount config for type \"bind\": field Source must not be empty")
        source = os.path.normpath(os.path.abspath(source))
    elif kind == "tmpfs" and source:
        raise UsageError("invalid mount config for type \"tmpfs\": field Source must not be specified")
    elif kind == "volume" and source and not VOLUME_NAME.match(source):
        raise UsageError("\"%s\" includes invalid characters for a local volume name, only "
                         "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed" % source)
    mount = Mount(kind, source, _target(kind, target, raw), readonly=readonly, given=raw)
    if kind == "bind":
        mount.propagation = fields.get("bind-propagation") or ""
        if mount.propagation and mount.propagation not in PROPAGATIONS:
            raise UsageError("invalid argument \"%s\" for \"--mount\" flag: invalid propagation mode: %s"
                             % (raw, mount.propagation))
    if kind == "volume":
        mount.nocopy = "volume-nocopy" in fields and _bool("volume-nocopy", fields["volume-nocopy"], raw)
    if kind == "tmpfs":
        options = []
        if fields.get("tmpfs-size"):
            options.append("size=%d" % _size(fields["tmpfs-size"], raw))
        if fields.get("tmpfs-mode"):
            options.append("mode=%s" % _mode(fields["tmpfs-mode"], raw))
        mount.options = options
    return mount


def parse_tmpfs(raw: str) -> Mount:
    """One ``--tmpfs`` value."""
    target, _, opts = raw.partition(":")
    options = []
    for opt in (o for o in opts.split(",") if o):
        key, eq, value = opt.partition("=")
        if eq and key in TMPFS_KEYS:
            if key == "size":
                value = str(_size(value, raw))
            elif key == "mode":
                value = _mode(value, raw)
            options.append("%s=%s" % (key, value))
        elif not eq and opt in TMPFS_OPTIONS:
            options.append(opt)
        else:
            raise UsageError("invalid --tmpfs %r: unknown option %r (mount options such as size=64m, "
                             "mode=1777, noexec, ro)" % (raw, opt))
    readonly = "ro" in options
    options = [o for o in options if o not in ("ro", "rw")]
    return Mount("tmpfs", "", _target("tmpfs", target, raw), readonly=readonly, options=options, given=raw)


def _size(text: str, raw: str) -> int:
    from rootless.streams import parse_size
    try:
        size = parse_size(text)
    except (ValueError, UsageError):
        size = -1
    if size < 0:
        raise UsageError("invalid tmpfs size %r in %r (a number of bytes, or 64k, 64m, 1g)" % (text, raw))
    return size


def _mode(text: str, raw: str) -> str:
    if not _MODE.match(text):
        raise UsageError("invalid tmpfs mode %r in %r (octal, as 1777)" % (text, raw))
    return "%o" % int(text, 8)


def parse_device(raw: str) -> Mount:
    """One ``--device HOST[:CTR][:PERMISSIONS]`` (Docker's spelling): a bind of the host's
    device node (or of a directory of them) the user can open. The permissions of a device
    cgroup (``r``, ``w``, ``m``) cannot be applied without one: ``rwm`` (the default) and
    ``rw`` are taken; a narrower set is refused rather than not enforced."""
    parts = raw.split(":")
    if len(parts) > 3 or not parts[0]:
        raise UsageError("bad format for --device: %s (use HOST[:CONTAINER][:PERMISSIONS])" % raw)
    host = parts[0]
    target, perms = host, "rwm"
    if len(parts) == 2:
        if parts[1] and set(parts[1]) <= set("rwm") and not parts[1].startswith("/"):
            perms = parts[1]
        else:
            target = parts[1]
    elif len(parts) == 3:
        target, perms = parts[1], parts[2]
    if not perms or not set(perms) <= set("rwm"):
        raise UsageError("invalid device mode: %s (r, w and m)" % perms)
    if not {"r", "w"} <= set(perms):
        raise UsageError("--device %s: permissions %r need a device cgroup, which rootless cannot set up; "
                         "use rw (the node's own mode still applies)" % (raw, perms))
    if not host.startswith("/"):
        raise UsageError("--device %s: the host path must be absolute" % raw)
    return Mount("device", os.path.normpath(host), _target("bind", target, raw), options=[perms], given=raw)


def check_devices(devices: List[Mount]) -> None:
    """At create: each host device exists, is a device node (or a directory of them), and
    the user may open it for reading and writing, else Docker's message and the reason."""
    import stat
    for d in devices:
        try:
            st = os.stat(d.source)
        except OSError as e:
            raise UsageError("error gathering device information while adding custom device \"%s\": %s"
                             % (d.source, (e.strerror or str(e)).lower()))
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise UsageError("error gathering device information while adding custom device \"%s\": not a "
                             "device node" % d.source)
        if not os.access(d.source, os.R_OK | os.W_OK):
            import grp
            import pwd
            try:
                owner = "%s:%s" % (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name)
            except KeyError:
                owner = "%d:%d" % (st.st_uid, st.st_gid)
            raise UsageError("--device %s: you cannot open it for reading and writing (mode %s, owner %s): "
                             "its owner must give your user or group access" % (d.source, stat.filemode(st.st_mode),
                                                                               owner))


def collect(volumes=(), mount_specs=(), tmpfs=(), cwd: Optional[str] = None, devices=()) -> List[Mount]:
    """Every asked mount (``--device``'s too), checked for duplicate targets (Docker's message)."""
    mounts = [parse_volume(v, cwd) for v in volumes] + [parse_mount(m) for m in mount_specs] + \
             [parse_tmpfs(t) for t in tmpfs] + [parse_device(d) for d in devices]
    seen = set()
    for m in mounts:
        if m.target in seen:
            raise UsageError("Duplicate mount point: %s" % m.target)
        seen.add(m.target)
    return mounts


def check_sources(mounts: List[Mount]) -> None:
    """At create: every bind source exists (nothing is made on the host), every device
    can be opened."""
    check_devices([m for m in mounts if m.kind == "device"])
    for m in mounts:
        if m.kind == "bind" and not os.path.exists(m.source):
            raise UsageError("invalid mount config for type \"bind\": bind source path does not exist: %s"
                             % m.source)


def entries(mounts: List[Mount], volume_dirs: Optional[Dict[int, str]] = None) -> List[dict]:
    """The bundle's mount entries for ``mounts``, parents before children (Docker sorts
    by depth too, so that ``/a`` never hides ``/a/b``). ``volume_dirs``: the host directory
    of each volume mount (by its index in ``mounts``)."""
    out = []
    for i, m in sorted(enumerate(mounts), key=lambda pair: pair[1].target.count("/")):
        if m.kind == "device":
            out.append({"destination": m.target, "type": "bind", "source": m.source,
                        "options": ["rbind" if os.path.isdir(m.source) else "bind", "rw"]})
            continue
        if m.kind == "tmpfs":
            options = [o for o in TMPFS_DEFAULTS if not _overridden(o, m.options)]
            options += [o for o in m.options if o not in ("exec", "suid", "dev")]
            if m.readonly:
                options.append("ro")
            out.append({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": options})
            continue
        source = m.source if m.kind == "bind" else (volume_dirs or {})[i]
        if isinstance(source, tuple):  # a volume of type=tmpfs: (tmpfs, its o= options)
            options = list(TMPFS_DEFAULTS) + list(source[1]) + (["ro"] if m.readonly else [])
            out.append({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": options})
            continue
        options = ["rbind", "ro" if m.readonly else "rw"]
        if m.propagation:
            options.append(m.propagation)
        out.append({"destination": m.target, "type": "bind", "source": source, "options": options})
    return out


def _overridden(default: str, options: List[str]) -> bool:
    return default[2:] in options  # "exec" lifts "noexec", "suid" "nosuid", "dev" "nodev"


def inspect_mounts(mounts: List[Mount], volume_dirs: Optional[Dict[int, str]] = None) -> List[dict]:
    """Docker's ``Mounts`` of ``inspect``: binds and volumes (a tmpfs of --tmpfs is listed
    in HostConfig.Tmpfs only, as Docker does; one of --mount is listed here)."""
    out = []
    for i, m in enumerate(mounts):
        if m.kind == "device":
            continue  # HostConfig.Devices
        if m.kind == "tmpfs":
            if m.given.startswith("/"):
                continue  # --tmpfs
            out.append({"Type": "tmpfs", "Source": "", "Destination": m.target, "Mode": "", "RW": not m.readonly,
                        "Propagation": ""})
            continue
        source = m.source if m.kind == "bind" else (volume_dirs or {}).get(i, "")
        entry = {"Type": m.kind, "Source": source if isinstance(source, str) else "",
                 "Destination": m.target, "Mode": _mode_text(m), "RW": not m.readonly,
                 "Propagation": (m.propagation or "rprivate") if m.kind == "bind" else ""}
        if m.kind == "volume":
            entry = {"Type": "volume", "Name": m.source, "Source": entry["Source"], "Destination": m.target,
                     "Driver": "local", "Mode": entry["Mode"], "RW": entry["RW"], "Propagation": ""}
        out.append(entry)
    return out


def _mode_text(m: Mount) -> str:
    if m.given.startswith("type=") or "=" in m.given.split(",")[0]:
        return ""  # --mount: Docker shows no mode
    parts = m.given.split(":")
    return parts[2] if len(parts) == 3 else ""


def host_config(volumes=(), mount_specs=(), tmpfs=(), devices=()) -> dict:
    """HostConfig's Binds, Mounts, Tmpfs and Devices, as Docker keeps what was asked."""
    return {
        "Binds": list(volumes) or None,
        "Mounts": [_mount_json(parse_mount(m)) for m in mount_specs] or None,
        "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in tmpfs} or None,
        "Devices": [{"PathOnHost": d.source, "PathInContainer": d.target, "CgroupPermissions": d.options[0]}
                    for d in map(parse_device, devices)],
    }


def _mount_json(m: Mount) -> dict:
    out = {"Type": m.kind, "Source": m.source, "Target": m.target}
    if m.readonly:
        out["ReadOnly"] = True
    if m.propagation:
        out["BindOptions"] = {"Propagation": m.propagation}
    if m.nocopy:
        out["VolumeOptions"] = {"NoCopy": True}
    return out


def volumes_from(containers, refs, taken) -> list:
    """The mounts of ``--volumes-from``: each named container's binds and volumes at the
    same targets (``:ro``/``:rw`` overriding their mode), those of ``taken`` targets (the
    user's own -v/--mount) left out, as Docker does."""
    if not refs:
        return []
    out = []
    for ref in refs:
        name, _, mode = ref.rpartition(":") if ref.endswith((":ro", ":rw")) else (ref, "", "")
        record = containers.find(name)
        for m in record.get("mounts") or ():
            if m.get("Type") not in ("bind", "volume") or m["Destination"] in taken:
                continue
            readonly = (mode == "ro") if mode else not m.get("RW", True)
            source = m["Source"] if m["Type"] == "bind" else m.get("Name", "")
            out.append(Mount(m["Type"], source, m["Destination"], readonly=readonly,
                             propagation=m.get("Propagation", "") if m["Type"] == "bind" and
                             m.get("Propagation") != "rprivate" else "", nocopy=True,
                             given="%s:%s" % (source, m["Destination"])))
            taken = set(taken) | {m["Destination"]}
    return out


def user_mounts(bundle: dict, asked, paths, image_config: dict, made: list) -> list:
    """Add the mounts of -v, --mount, --tmpfs and the image's VOLUMEs (anonymous volumes,
    unless a mount of the user's covers the path) to ``config.json`` after the defaults, a
    default at the same target giving way (a bind of the user's own /etc/hosts replaces
    ours, a --tmpfs /dev/shm Docker's shm). Returns Docker's ``Mounts`` for inspect; the
    anonymous volumes made are appended to ``made``."""
    image_volumes = sorted((image_config.get("Volumes") or {}).keys())
    if not asked and not image_volumes:
        return []
    asked = list(asked)
    check_sources(asked)
    targets = {m.target for m in asked}
    for path in image_volumes:
        target = os.path.normpath("/" + path.lstrip("/"))
        if target != "/" and target not in targets:
            asked.append(Mount("volume", "", target, given=target))
            targets.add(target)
    volume_dirs, copyup = {}, []
    if any(m.kind == "volume" for m in asked):
        from rootless.storage.volumes import Volumes
        volumes = Volumes(paths)
        for i, m in enumerate(asked):
            if m.kind != "volume":
                continue
            record = volumes.create(m.source, anonymous=not m.source)
            if not m.source:
                made.append(record["Name"])
            m.source = record["Name"]
            options = record.get("Options") or {}
            if options.get("type") == "tmpfs":
                volume_dirs[i] = ("tmpfs", [o for o in options.get("o", "").split(",") if o])
            elif "bind" in options.get("o", "").split(","):
                volume_dirs[i] = options["device"]
            else:
                volume_dirs[i] = volumes.data(m.source)
                if not m.nocopy:
                    copyup.append([m.target, volume_dirs[i]])
    bundle["mounts"] = [m for m in bundle["mounts"] if m["destination"] not in targets]
    bundle["mounts"] += entries(asked, volume_dirs)
    if copyup:
        from rootless.runtime import config as rc
        bundle["annotations"][rc.COPYUP] = jsonfast.dumps(copyup)
    return inspect_mounts(asked, volume_dirs)


def drop_volumes(paths, names) -> None:
    """Remove the anonymous volumes a create made before it failed."""
    if not names:
        return
    from rootless.storage.volumes import Volumes
    volumes = Volumes(paths)
    for name in names:
        try:
            volumes.remove(name, [])
        except (OSError, NotFound):
            pass
