"""The rootfs driver ladder: kernel overlayfs in a user namespace -> fuse-overlayfs -> copy.

Overlay support is probed with a real test mount (not a kernel version check): in a
child that becomes root of a new user and mount namespace, mount overlayfs with
``userxattr`` over directories in the storage root's tmp/, and look through it.

A read-only image store (``--image-store``) is probed the same way with its own layers
directory as the lower layer (read, never written): overlayfs refuses some network file
systems as lower layers, and a container whose layers lie there then takes the next rung.
"""

import os
import shutil
from typing import Dict

from rootless import fsutil


def _try_overlay(base: str) -> str:
    from rootless.linux import idmap, mount, ns
    idmap.enter_single_uid_namespace()
    ns.unshare(ns.CLONE_NEWNS)
    # Our mounts must not propagate anywhere (the host's / may be shared).
    mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
    d = {n: os.path.join(base, n) for n in ("lower", "upper", "work", "merged")}
    with open(os.path.join(d["lower"], "probe"), "w") as f:
        f.write("lower")
    mount.mount("overlay", d["merged"], "overlay", 0,
                "lowerdir=%s,upperdir=%s,workdir=%s,userxattr" % (d["lower"], d["upper"], d["work"]))
    with open(os.path.join(d["merged"], "probe")) as f:
        if f.read() != "lower":
            raise OSError(0, "overlay mounted but shows the wrong content")
    with open(os.path.join(d["merged"], "written"), "w") as f:
        f.write("upper")
    return "kernel overlayfs mounts in a user namespace (userxattr)"


def _try_overlay_lower(lower: str, base: str) -> str:
    from rootless.linux import idmap, mount, ns
    idmap.enter_single_uid_namespace()
    ns.unshare(ns.CLONE_NEWNS)
    mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
    d = {n: os.path.join(base, n) for n in ("upper", "work", "merged")}
    mount.mount("overlay", d["merged"], "overlay", mount.MS_RDONLY,
                "lowerdir=%s,upperdir=%s,workdir=%s,userxattr" % (lower, d["upper"], d["work"]))
    if sorted(os.listdir(d["merged"])) != sorted(os.listdir(lower)):
        raise OSError(0, "overlay mounted but shows other entries than its lower layer")
    return "kernel overlayfs takes its layers as lower layers"


def probe_store(store_root: str, tmp_root: str) -> Dict[str, str]:
    """How a container can use layers of the image store at ``store_root`` in place:
    {"choice": overlay|fuse-overlayfs|copy|unusable, "reason", "fs"}, and "foreign": true
    when its files are another user's (then fuse-overlayfs must squash their owners)."""
    from rootless.linux.child import run_in_child
    from rootless.paths import fs_type
    kind = fs_type(store_root)
    lower = os.path.join(store_root, "layers")
    if not os.path.isdir(lower):
        lower = store_root
    if not os.access(lower, os.R_OK | os.X_OK):
        return {"choice": "unusable", "fs": kind,
                "reason": "%s cannot be read by you (its owner can open it: chmod 755 %s)" % (lower, store_root)}
    owner = os.stat(store_root).st_uid
    fuse = shutil.which("fuse-overlayfs")
    fuse_ok = bool(fuse) and os.access("/dev/fuse", os.R_OK | os.W_OK)
    if owner != os.getuid():
        # Its files belong to a uid our user namespace cannot map: kernel overlayfs shows
        # them as nobody's and cannot copy one up (the copy would need that owner), so the
        # container could change nothing of its image, not even create /etc/hosts to bind.
        why = ("its files belong to uid %d, which your user namespace cannot map: kernel overlayfs "
               "could not copy them up" % owner)
        if fuse_ok:
            return {"choice": "fuse-overlayfs", "foreign": True, "fs": kind,
                    "reason": why + "; %s shows them as root's (squash_to_root)" % fuse}
        return {"choice": "copy", "foreign": True, "fs": kind,
                "reason": why + "; no usable fuse-overlayfs: each container copies its image (files "
                                "only their owner may read cannot be copied)"}
    with fsutil.WorkDir(tmp_root, "probe-") as work:
        for name in ("upper", "work", "merged"):
            os.mkdir(os.path.join(work.path, name), 0o700)
        ok, detail = run_in_child(lambda: _try_overlay_lower(lower, work.path))
    if ok:
        return {"choice": "overlay", "reason": "%s (on %s)" % (detail, kind), "fs": kind}
    why = "kernel overlayfs refuses its layers (on %s) as lower layers (%s)" % (kind, detail)
    if fuse_ok:
        return {"choice": "fuse-overlayfs", "reason": why + "; using " + fuse, "fs": kind}
    return {"choice": "copy", "reason": why + "; no usable fuse-overlayfs: each container copies its image",
            "fs": kind}


def probe(tmp_root: str) -> Dict[str, str]:
    """{"choice": "overlay"|"fuse-overlayfs"|"copy", "reason": ..., "remedy": ...}"""
    from rootless.linux.child import run_in_child
    with fsutil.WorkDir(tmp_root, "probe-") as work:
        for name in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(work.path, name), 0o700)
        ok, detail = run_in_child(lambda: _try_overlay(work.path))
    if ok:
        return {"choice": "overlay", "reason": detail, "remedy": ""}
    overlay_why = "kernel overlayfs in a user namespace failed (%s)" % detail
    fuse = shutil.which("fuse-overlayfs")
    if fuse and os.access("/dev/fuse", os.R_OK | os.W_OK):
        return {"choice": "fuse-overlayfs", "reason": overlay_why + "; using " + fuse, "remedy": ""}
    missing = "fuse-overlayfs is not installed" if not fuse else "/dev/fuse is not usable by you"
    return {"choice": "copy", "reason": "%s; %s: each container gets a full copy of its image"
                                        % (overlay_why, missing),
            "remedy": "a kernel >= 5.11 (overlay in user namespaces), or fuse-overlayfs with "
                      "a usable /dev/fuse, makes containers start faster and use less disk"}
