"""Read-only image stores (``--image-store``): their indexes, read and merged after ours;
and, on the preparer's side, the modes that let others read a store.

An image store is another storage root, read and never written (``image.store`` says
why reading it needs no lock). Its images come after this store's own, in the order the
stores are given; a tag or digest name belongs to the first index listing it, ours first.
An image that several list is ours (or the first store's) with the names the others add:
a copy, so that a merged view never changes a record ``update_index`` would write back.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict, Iterable, Tuple

from rootless import fsutil
from rootless.errors import Conflict, NotFound, StoreError
from rootless.image.store import INDEX_VERSION, ImageRecord, find_image


def read_index(paths) -> Dict[str, ImageRecord]:
    """The index of the image store at ``paths`` (a ``Paths``); a missing one is empty."""
    data = fsutil.read_json(paths.images_index, {"version": INDEX_VERSION, "images": {}})
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
        raise StoreError("image store %s: %s is not an index this rootless reads (version %r); "
                         "prepare the store with this version, or leave it out of --image-store"
                         % (paths.root, paths.images_index, data.get("version") if isinstance(data, dict) else None))
    return {k: ImageRecord.from_json(v) for k, v in data["images"].items()}


def merge(own: Dict[str, ImageRecord], others: Iterable[Tuple[str, Dict[str, ImageRecord]]]):
    """(the merged index, image ID -> the root of the store that added it) of ``own`` and
    each (root, index) of ``others`` after it (see above)."""
    merged, origin = dict(own), {}
    names = {n for r in own.values() for n in r.repo_tags + r.repo_digests}
    for root, index in others:
        for key, rec in index.items():
            tags = [t for t in rec.repo_tags if t not in names]
            digests = [d for d in rec.repo_digests if d not in names]
            names.update(tags + digests)
            if key in merged:
                if tags or digests:
                    first = merged[key]
                    merged[key] = ImageRecord(first.id, first.manifest, first.layers, first.repo_tags + tags,
                                              first.repo_digests + digests, first.created, first.size, first.added)
                continue
            merged[key] = ImageRecord(rec.id, rec.manifest, rec.layers, tags, digests, rec.created, rec.size,
                                      rec.added)
            origin[key] = root
    return merged, origin


def naming(others: Iterable[Tuple[str, Dict[str, ImageRecord]]], name: str) -> str:
    """The root of the first store whose own index finds ``name`` ("" if none does)."""
    for root, index in others:
        try:
            find_image(index, name)
            return root
        except (NotFound, Conflict):
            continue
    return ""


def share_bits(root: str) -> int:
    """The group/other read and search bits the owner gave the store's root (0: private)."""
    try:
        return os.stat(root).st_mode & 0o055
    except OSError:
        return 0


def share(path: str, bits: int, directory: bool) -> None:
    """Give ``path`` the read (a directory: and search) ``bits`` of the store's root, and
    take any group or other write bit off (records written by a version whose umask-0
    unpack left them 0666 lose it here, before others can reach them)."""
    try:
        st = os.lstat(path)
        if not os.path.islink(path):
            os.chmod(path, (st.st_mode & 0o7755) | (bits if directory else bits & 0o044))
    except OSError:
        pass


def share_layer(layer_dir: str, bits: int) -> None:
    """A layer's directory and its records opened so; its ``diff`` keeps the image's modes."""
    share(layer_dir, bits, True)
    for name in os.listdir(layer_dir):
        path = os.path.join(layer_dir, name)
        if name != "diff":
            share(path, bits, os.path.isdir(path) and not os.path.islink(path))


def share_store(paths, bits: int) -> None:
    """The store's own parts opened to the classes its root is open to: the index, blobs,
    layer directories and their records (a root opened after layers were added opens
    them here). What a layer's files allow is the image's business, as is what containers
    and work in progress keep to themselves."""
    for d in (os.path.dirname(paths.blobs), paths.blobs, paths.layers):
        share(d, bits, True)
    if os.path.exists(paths.images_index):
        share(paths.images_index, bits, False)
    for name in os.listdir(paths.layers):
        path = os.path.join(paths.layers, name)
        if os.stat(path).st_mode & bits != bits:
            share_layer(path, bits)
