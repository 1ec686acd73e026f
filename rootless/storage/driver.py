"""The rootfs driver ladder: kernel overlayfs in a user namespace -> fuse-overlayfs -> copy.

Overlay support is probed with a real test mount (not a kernel version check): in a
child that becomes root of a new user and mount namespace, mount overlayfs with
``userxattr`` over directories in the storage root's tmp/, and look through it.
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
