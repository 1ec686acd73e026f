"""Who owns what in an image: the owners the layers recorded at unpack, merged (pure file
reads; layers are unpacked as you, and their original owners are kept beside them)."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict, List, Tuple

from rootless.fsutil import real_dir_path


def effective_owners(layers: List[Tuple[str, dict]]) -> Dict[str, List[int]]:
    """Owner (uid, gid) of every path that some layer gives a non-root owner, as the image
    shows it: the topmost layer holding the path decides (root if it records nothing)."""
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
