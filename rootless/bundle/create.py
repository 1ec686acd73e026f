"""``create``: an image and ``run`` options become a container (record + bundle).

The container directory holds ``config.json`` (the OCI runtime spec), the files bound
over /etc/hosts, /etc/hostname and /etc/resolv.conf, and the rootfs driver's own
directories (the writable layer). Every choice a start depends on (id mapping, rootfs
driver, the image's layers) is made here, once, and recorded in ``container.json``.
"""

import json
import os
import time
from typing import Dict, List, Tuple

from rootless.bundle import spec as spec_mod
from rootless.bundle import users
from rootless.errors import NotFound, Unsupported, UsageError
from rootless.paths import Paths


class CreateOptions:
    """``create``/``run`` options beyond the bundle's own (plain class: cheap import)."""

    def __init__(self, image: str, run: spec_mod.RunOptions, name: str = "", user: str = "",
                 userns: str = "", storage_driver: str = "", auto_remove: bool = False,
                 interactive: bool = False, init: bool = False, stop_signal: str = "",
                 add_hosts: Tuple[str, ...] = (), dns: Tuple[str, ...] = (),
                 dns_search: Tuple[str, ...] = (), dns_options: Tuple[str, ...] = ()):
        self.image, self.run, self.name, self.user = image, run, name, user
        self.userns, self.storage_driver, self.auto_remove = userns, storage_driver, auto_remove
        self.interactive, self.init, self.stop_signal = interactive, init, stop_signal
        self.add_hosts, self.dns, self.dns_search, self.dns_options = add_hosts, dns, dns_search, dns_options


def create(paths: Paths, store, opts: CreateOptions, debug=None) -> dict:
    from rootless.runtime import names, probes, state
    from rootless.storage import rootfs
    try:
        image = store.lookup(opts.image)
    except NotFound:
        raise NotFound("unable to find image %r locally (load it first: rootless load -i FILE)" % opts.image)
    config = json.loads(store.read_blob(image.id).decode())
    layers = [(store.layer_diff(d), store.layer_meta(d)["record"]) for d in image.layers]
    probed = probes.collect(paths)
    if probed["idmap"]["choice"] == "unavailable":
        raise Unsupported("%s; %s" % (probed["idmap"]["reason"], probed["idmap"]["remedy"]))
    user = users.resolve(opts.user or config.get("config", {}).get("User") or "",
                         image_file(layers, "etc/passwd"), image_file(layers, "etc/group"))
    idmap = id_mapping(probed["idmap"]["choice"], opts.userns, user)
    if idmap["keep_id"] and not opts.user:
        user = users.User(os.getuid(), os.getgid(), (), "", "/")
    driver, why = rootfs.choose(opts.storage_driver or None, probed["rootfs"]["choice"], layers)
    containers = state.Containers(paths)
    cid = state.new_id()
    name = opts.name or names.generate(containers.taken)
    if opts.name:
        _check_name(opts.name)
    run = opts.run
    hostname = run.hostname or cid[:12]
    run = run._replace(hostname=hostname)
    stop_signal = spec_mod.stop_signal(opts.stop_signal) if opts.stop_signal else \
        config.get("config", {}).get("StopSignal") or "SIGTERM"
    bundle = spec_mod.generate(config.get("config") or {}, run, user, dict(os.environ))
    bundle["annotations"]["org.opencontainers.image.stopSignal"] = stop_signal
    record = {
        "id": cid, "name": name, "created": time.time(), "image": opts.image, "image_id": image.id,
        "layers": list(image.layers), "driver": driver, "driver_reason": why,
        "idmap": idmap, "auto_remove": opts.auto_remove, "interactive": opts.interactive,
        "init": opts.init, "command": bundle["process"]["args"], "labels": dict(run.labels or {}),
    }

    def prepare(cdir: str) -> None:
        with open(os.path.join(cdir, "config.json"), "w") as f:
            json.dump(bundle, f, indent=1)
        _write(cdir, "hostname", hostname + "\n")
        _write(cdir, "hosts", hosts_file(hostname, cid, opts.add_hosts))
        _write(cdir, "resolv.conf", resolv_conf(_host_resolv(), opts.dns, opts.dns_search, opts.dns_options))
        rootfs.get(driver).prepare(cdir, layers)
    if debug:
        debug("container %s: driver %s (%s), id mapping %s" % (cid[:12], driver, why, idmap["mode"]))
    return containers.create(record, prepare)


def _write(cdir: str, name: str, text: str) -> None:
    with open(os.path.join(cdir, name), "w") as f:
        f.write(text)
    os.chmod(os.path.join(cdir, name), 0o644)


def _check_name(name: str) -> None:
    import re
    if not re.match(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$", name):
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


def id_mapping(choice: str, userns: str, user) -> dict:
    """The maps for this container: subuid (0 -> you, 1.. -> sub-ids) or single-uid (the
    container's user -> you). ``--userns=keep-id`` puts your uid at the same number."""
    from rootless.linux import idmap
    import pwd
    if userns not in ("", "host", "keep-id"):
        raise UsageError("unsupported --userns %r (use keep-id)" % userns)
    keep = userns == "keep-id"
    uid, gid = os.getuid(), os.getgid()
    if choice == "subuid":
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        subu = idmap.read_subids("/etc/subuid", name, uid)[0]
        subg = idmap.read_subids("/etc/subgid", name, uid)[0]
        return {"mode": "subuid", "keep_id": keep,
                "uid_map": _maps(uid, subu.start, subu.count, keep),
                "gid_map": _maps(gid, subg.start, subg.count, keep),
                "newuidmap": idmap.helper("newuidmap")[0], "newgidmap": idmap.helper("newgidmap")[0]}
    inside_uid, inside_gid = (uid, gid) if keep else (user.uid, user.gid)
    return {"mode": "single-uid", "keep_id": keep,
            "uid_map": [[inside_uid, uid, 1]], "gid_map": [[inside_gid, gid, 1]]}


def _maps(mine: int, start: int, count: int, keep: bool) -> List[List[int]]:
    if not keep:
        return [[0, mine, 1], [1, start, count]]
    if mine >= count:
        raise Unsupported("--userns=keep-id needs at least %d subordinate ids (you have %d)" % (mine + 1, count))
    return [[0, start, mine], [mine, mine, 1], [mine + 1, start + mine, count - mine]]


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


def effective_owners(layers: List[Tuple[str, dict]]) -> Dict[str, List[int]]:
    """Owner (uid, gid) of every path that some layer gives a non-root owner, as the image
    shows it: the topmost layer holding the path decides (root if it records nothing)."""
    from rootless.storage.copy import real_dir_path
    candidates = set()
    for _, record in layers:
        candidates.update(record.get("owners", {}))
    result = {}
    for rel in candidates:
        for diff, record in reversed(layers):
            path = real_dir_path(diff, rel)
            if path and os.path.lexists(path):
                owner = record.get("owners", {}).get(rel)
                if owner and owner != [0, 0]:
                    result[rel] = owner
                break
    return result
