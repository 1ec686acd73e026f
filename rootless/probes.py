"""Run each fallback ladder's probe once and cache the answers in the run dir.

The cache key holds what the answers depend on: the kernel, the user, the storage root,
and the files the id-mapping probe reads. ``info`` shows the answers; later commands
choose their strategy from them.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict

from rootless import fsutil, jsonfast
from rootless.paths import Paths, ensure_private_dir

VERSION = 2  # 2: image stores are probed too


def _key(paths: Paths) -> str:
    parts = [str(VERSION), os.uname().release, str(os.getuid()), paths.root] + list(paths.image_stores)
    for path in ("/etc/subuid", "/etc/subgid", "/usr/bin/newuidmap", "/usr/bin/fuse-overlayfs",
                 "/dev/fuse"):
        try:
            st = os.stat(path)
            parts.append("%s:%d:%o" % (path, st.st_mtime_ns, st.st_mode))
        except OSError:
            parts.append(path + ":-")
    return "|".join(parts)


def collect(paths: Paths, refresh: bool = False) -> Dict[str, Dict[str, str]]:
    """{"idmap": {...}, "rootfs": {...}}: each {"choice", "reason", "remedy"}; and
    "image_stores": {root: {"choice", "reason", "fs"}} (``driver.probe_store``)."""
    # One cache per storage root (the rootfs probe depends on it): with one file for all,
    # two roots used in turn would probe again on every command.
    import zlib
    cache = os.path.join(paths.run, "probes-%08x.json" % zlib.crc32(paths.root.encode()))
    key = _key(paths)
    if not refresh:
        cached = fsutil.read_json(cache)
        if isinstance(cached, dict) and cached.get("key") == key:
            return cached["results"]
    from rootless.runtime import userns
    from rootless.storage import driver
    results = {"idmap": userns.probe()}
    if results["idmap"]["choice"] == "unavailable":
        results["rootfs"] = {"choice": "copy", "reason": "no user namespaces", "remedy": ""}
    else:
        ensure_private_dir(paths.root)
        results["rootfs"] = driver.probe(paths.tmp)
    if paths.image_stores:
        if results["idmap"]["choice"] == "unavailable":
            results["image_stores"] = {d: {"choice": "copy", "reason": "no user namespaces", "fs": ""}
                                       for d in paths.image_stores}
        else:
            results["image_stores"] = {d: driver.probe_store(d, paths.tmp) for d in paths.image_stores}
    try:
        ensure_private_dir(paths.run)
        fsutil.atomic_write(cache, jsonfast.dumps({"key": key, "results": results}).encode())
    except OSError:
        pass  # an unwritable run dir costs a re-probe next time, nothing more
    return results
