"""The image store: content-addressed blobs, unpacked layers and an index of images.

Layout under the storage root (see ``rootless.paths``)::

    blobs/sha256/<hex>        manifests, configs and layer blobs, verified, read-only
    layers/<hex>/diff/        a layer unpacked once per diff_id, shared by every image
    layers/<hex>/meta.json    its record (blob, sizes, whiteouts, original owners)
    images.json               the index: image ID -> manifest, layers, tags
    tmp/                      work in progress (see ``fsutil.WorkDir``)
    locks/                    flock files

Crash safety: blobs and layers appear by ``rename`` after verification; an image is listed
only when ``images.json`` (replaced atomically) names it, which happens after all its parts
exist. A ``kill -9`` at any point leaves at worst unreferenced blobs/layers and abandoned
work dirs, which ``collect_garbage`` removes.

Read-only image stores (``paths.image_stores``, see docs/image-stores.md): other storage
roots, typically one prepared on a cluster's shared file system, whose images ``lookup``
and ``images`` list after this store's own, and whose blobs and layers are used where they
are, never copied and never written. Nothing here locks them (they may not be ours to
write): their preparer's atomic publication is what makes reading them while it adds
images safe (a layer appears whole, by rename, before ``images.json``, replaced atomically,
names it). A store whose root its owner opened to others (``chmod 755 DIR``, or 750 for a
group) keeps what it adds readable to them (``image.stores.share_store``).

Concurrency: ``images.json`` changes under an exclusive index lock; each layer is unpacked
under its own lock, so two loads sharing a layer store it once; loads hold the GC lock
shared and garbage collection takes it exclusively, so GC never removes a layer a load has
made but not yet listed.
"""

from __future__ import annotations

import os
import stat
import time
from collections import namedtuple

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterable, List, Optional

from rootless import fsutil, paths as paths_mod
from rootless.errors import (Conflict, DigestMismatch, InvalidImage, NotFound, SizeLimitExceeded, StoreError,
                             UsageError)
from rootless.image import reference

INDEX_VERSION = 1
DEFAULT_MAX_LAYER_SIZE = 64 << 30  # 64 GiB uncompressed per layer: far above real images


class ImageRecord:
    """One image in the index. ``id`` is the config digest, as Docker shows it."""

    FIELDS = ("id", "manifest", "layers", "repo_tags", "repo_digests", "created", "size", "added")
    __slots__ = FIELDS

    def __init__(self, id: str, manifest: str, layers: List[str], repo_tags: Optional[List[str]] = None,
                 repo_digests: Optional[List[str]] = None, created: str = "", size: int = 0,
                 added: float = 0.0):
        self.id, self.manifest, self.layers = id, manifest, layers
        self.repo_tags, self.repo_digests = list(repo_tags or []), list(repo_digests or [])
        self.created, self.size, self.added = created, size, added

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.FIELDS}

    @classmethod
    def from_json(cls, d: dict) -> "ImageRecord":
        return cls(**{k: d[k] for k in cls.FIELDS if k in d})


LayerInfo = namedtuple("LayerInfo", "diff_id blob media_type blob_size tar_size content_size")


class Store:
    def __init__(self, paths: paths_mod.Paths, max_layer_size: Optional[int] = None,
                 debug: Optional[Callable[[str], None]] = None, usage: Optional[Callable[[], object]] = None):
        """``usage()`` returns what containers use (a ``removal.Usage``): rmi and prune
        spare those images, and garbage collection spares those layers."""
        self.paths = paths
        self._usage = usage
        self.max_layer_size = max_layer_size or _env_size("ROOTLESS_MAX_LAYER_SIZE") or DEFAULT_MAX_LAYER_SIZE
        self.debug = debug or (lambda msg: None)
        self._ready = False
        self._share_bits = None  # the group/other bits of the root, read once (_shared_bits)
        self._indexes = None  # the image stores' indexes, read once (shared_indexes)
        self.shared = tuple(paths_mod.Paths(root=d, run=paths.run) for d in paths.image_stores)
        self.origin = {}  # image ID -> the image store root it was found in (by images/lookup)

    def also(self, roots: Iterable[str]) -> "Store":
        """This store, reading the image stores ``roots`` too (those a container recorded)."""
        extra = [r for r in roots if r != self.paths.root and r not in self.paths.image_stores]
        if not extra:
            return self
        return Store(self.paths._replace(image_stores=tuple(self.paths.image_stores) + tuple(extra)),
                     self.max_layer_size, self.debug, self._usage)

    # -- set-up and locks ---------------------------------------------------------------

    def ensure(self) -> "Store":
        if not self._ready:
            paths_mod.ensure_private_dir(self.paths.root)
            for d in (self.paths.blobs, self.paths.layers, self.paths.tmp, self.paths.locks):
                os.makedirs(d, mode=0o700, exist_ok=True)
            if self._shared_bits():  # a root its owner opened to others (image.stores.share_store)
                from rootless.image import stores
                stores.share_store(self.paths, self._shared_bits())
            paths_mod.notice_once(self.paths)
            self._ready = True
        return self

    def lock(self, name: str, shared: bool = False, blocking: bool = True) -> fsutil.FileLock:
        return fsutil.FileLock(os.path.join(self.paths.locks, name), shared, blocking)

    def writing(self) -> fsutil.FileLock:
        """Held (shared) by anything adding content; GC takes it exclusively."""
        return self.lock("gc.lock", shared=True)

    def work_dir(self, prefix: str = "work-") -> fsutil.WorkDir:
        return fsutil.WorkDir(self.paths.tmp, prefix)

    # -- blobs --------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        return self._find_blob(digest) is not None

    def _find_blob(self, digest: str) -> Optional[str]:
        """The blob's file here, else in the first image store that has it."""
        for paths in (self.paths,) + self.shared:
            path = paths.blob(digest)
            if os.path.exists(path):
                return path
        return None

    def blob_path(self, digest: str) -> str:
        path = self._find_blob(digest)
        if path is None:
            raise NotFound("blob %s is missing from the store%s" % (digest, self._stores_hint()))
        return path

    def _stores_hint(self) -> str:
        return (" and from the image stores (%s)" % ", ".join(p.root for p in self.shared) if self.shared
                else "")

    def read_blob(self, digest: str) -> bytes:
        with open(self.blob_path(digest), "rb") as f:
            return f.read()

    def commit_blob(self, tmp_path: str, digest: str) -> None:
        """Move a verified file into the blob store (a no-op if it is there already)."""
        final = self.paths.blob(digest)
        if os.path.exists(final):
            os.unlink(tmp_path)
            return
        os.chmod(tmp_path, 0o444)  # readable by all: a shared store's readers need no more
        os.replace(tmp_path, final)

    def put_blob_bytes(self, data: bytes, expected: Optional[str] = None) -> str:
        import hashlib
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if expected and expected != digest:
            raise DigestMismatch("content of %s hashes to %s" % (expected, digest))
        if not self.has_blob(digest):
            fsutil.atomic_write(self.paths.blob(digest), data, 0o444)
        return digest

    # -- layers -------------------------------------------------------------------------

    def layer_dir(self, diff_id: str) -> str:
        """Where the layer is: here, else in the first image store holding it whole (its
        meta.json is written last), else here (where an ``ingest`` would put it)."""
        own = self.paths.layer(diff_id)
        if self.shared and not os.path.exists(os.path.join(own, "meta.json")):
            for paths in self.shared:
                there = paths.layer(diff_id)
                if os.path.exists(os.path.join(there, "meta.json")):
                    return there
        return own

    def layer_store(self, diff_id: str) -> str:
        """The storage root holding the layer (this one, or an image store's)."""
        return os.path.dirname(os.path.dirname(self.layer_dir(diff_id)))

    def layer_info(self, diff_id: str) -> Optional[LayerInfo]:
        """The layer's record if it is complete in the store or an image store (else None)."""
        meta = fsutil.read_json(os.path.join(self.layer_dir(diff_id), "meta.json"))
        if not meta or (meta.get("blob") and not self.has_blob(meta["blob"])):
            return None
        if meta.get("blob"):
            return LayerInfo(diff_id, meta["blob"], meta["media_type"], meta["blob_size"],
                             meta["tar_size"], meta["record"]["content_size"])
        return LayerInfo(diff_id, diff_id, _media_type(""), meta["tar_size"], meta["tar_size"],
                         meta["record"]["content_size"])

    def open_layer(self, diff_id: str):
        """A reader of the layer's uncompressed tar stream, exactly as it was loaded."""
        from rootless import streams
        meta = self.layer_meta(diff_id)
        if meta.get("blob"):
            from rootless.image.manifest import compression_of
            return streams.decompressing(open(self.blob_path(meta["blob"]), "rb"),
                                         compression_of(meta["media_type"]))
        from rootless.storage.tarsplit import Reassembled
        return Reassembled(self.layer_dir(diff_id), diff_id)

    def layer_meta(self, diff_id: str) -> dict:
        meta = fsutil.read_json(os.path.join(self.layer_dir(diff_id), "meta.json"))
        if meta is None:
            raise NotFound("layer %s is not in the store%s" % (diff_id, self._stores_hint()))
        return meta

    def layer_diff(self, diff_id: str) -> str:
        return os.path.join(self.layer_dir(diff_id), "diff")

    def ingest_layer(self, open_blob: Callable[[], object], blob_digest: Optional[str] = None,
                     diff_id: Optional[str] = None, what: str = "layer",
                     region: Optional["tuple[str, int, int]"] = None) -> LayerInfo:
        """Verify, store and unpack one layer blob, unless the store has it already.

        ``open_blob()`` returns a binary reader of the blob as stored in the source
        (compressed or not). The expected digests are checked when given; for ``import``
        neither is known and the layer is named by what it hashes to. ``region`` (path,
        offset, size) says where the blob lies in a local file, for the faster
        ``_unpack_region`` path; it may also be a ``streams.Growing``, an uncompressed
        layer that a pull is still writing, which is unpacked as it arrives.
        """
        if diff_id:
            existing = self.layer_info(diff_id)
            if existing:
                self.debug("layer %s already present" % diff_id[:19])
                return existing
            with self.lock("layer-" + paths_mod.digest_hex(diff_id)):
                existing = self.layer_info(diff_id)
                if existing:
                    self.debug("layer %s unpacked meanwhile by another command" % diff_id[:19])
                    return existing
                return self._unpack_layer(open_blob, blob_digest, diff_id, what, region)
        return self._unpack_layer(open_blob, blob_digest, diff_id, what, region)

    def _unpack_layer(self, open_blob, blob_digest, diff_id, what, region=None) -> LayerInfo:
        """Unpack a layer into a work dir, verify it, and move it into place.

        The blob itself is not kept: the unpacked files plus a small tar-split record
        reproduce the uncompressed stream (see ``storage.tarsplit``). Only a layer that
        overwrote its own files, which a tar-split cannot rebuild, keeps its blob.
        """
        from rootless import streams
        from rootless.storage import layers
        started = time.monotonic()
        with self.work_dir("layer-") as work:
            layer_dir = os.path.join(work.path, "layer")
            os.mkdir(layer_dir, 0o700)
            os.mkdir(os.path.join(layer_dir, "diff"), 0o755)
            # The blob is hashed in a thread of its own while this one parses the tar and
            # creates files; an uncompressed blob is hashed once (its digest is the diff_id).
            fast = self._unpack_region(region, layer_dir, what) if region else None
            if fast is not None:
                record, blob, size = fast
                compression, content, tar_size = "", blob, size
            else:
                with open_blob() as src, streams.BlobSink(None) as sink:
                    outer = streams.HashingReader(src, what=what, sink=sink, hashing=False)
                    peek = streams.PeekReader(outer)
                    compression = streams.sniff(peek.head)
                    inner = streams.HashingReader(streams.decompressing(peek, compression), self.max_layer_size,
                                                  what, hashing=bool(compression))
                    record = layers.unpack(inner, os.path.join(layer_dir, "diff"), self.debug,
                                           self.max_layer_size, split_dir=layer_dir)
                    inner.drain()
                    outer.drain()
                blob, size, tar_size = sink.digest, outer.count, inner.count
                content = inner.digest if compression else blob
            if blob_digest and blob != blob_digest:
                raise DigestMismatch("%s: blob is %s but the manifest says %s; refusing the image"
                                     % (what, blob, blob_digest))
            if diff_id and content != diff_id:
                raise DigestMismatch("%s: uncompressed content is %s but the image config says "
                                     "%s; refusing the image" % (what, content, diff_id))
            diff_id = content
            meta = {"diff_id": diff_id, "tar_size": tar_size, "ownership": "squashed",
                    "record": record.to_json()}
            if not record.reproducible:
                self.debug("%s rewrites its own files; keeping its blob to reproduce it" % what)
                self._keep_blob(open_blob, blob, work.path)
                meta.update(blob=blob, blob_size=size, media_type=_media_type(compression))
            fsutil.atomic_write_json(os.path.join(layer_dir, "meta.json"), meta)
            final = self.paths.layer(diff_id)
            if not os.path.exists(os.path.join(final, "meta.json")):
                fsutil.remove_tree(final)  # a leftover without meta.json is incomplete
                if self._shared_bits():
                    from rootless.image import stores
                    stores.share_layer(layer_dir, self._shared_bits())
                os.rename(layer_dir, final)
                fsutil.fsync_dir(self.paths.layers)
        self.debug("layer %s unpacked in %.2fs (%d entries)" % (diff_id[:19], time.monotonic() - started, record.entries))
        return self.layer_info(diff_id)

    def _unpack_region(self, region, layer_dir: str, what: str):
        """Unpack an uncompressed blob straight from the file holding it; None when the
        blob is compressed, or the file is one that someone else could change meanwhile.

        The streaming path hashes exactly the bytes it unpacks. This one reads the region
        twice, once to hash it (in a thread, in parallel) and once to unpack it, which is
        only sound if the bytes cannot change in between: so the file must belong to us (or
        to root, who can change our store anyway) and be writable by nobody else. Anything
        else streams.
        """
        from rootless import streams
        from rootless.storage import layers
        if isinstance(region, streams.Growing):
            # Written by this process into its own downloads directory (mode 0700), and
            # hashed by the writer as it wrote: the same trust as a file of our own below.
            bound = self.max_layer_size if self.max_layer_size is not None else 1 << 62
            record = layers.unpack_region(region.fd, 0, bound, os.path.join(layer_dir, "diff"), self.debug,
                                          self.max_layer_size, split_dir=layer_dir, growing=region)
            digest, size = region.result()
            return record, digest, size
        path, offset, size = region
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            why = ("it is not a regular file" if not stat.S_ISREG(st.st_mode) else
                   "others could change the file meanwhile" if st.st_uid not in (0, os.geteuid())
                   or st.st_mode & 0o022 else
                   "the file is shorter than the archive says" if offset + size > st.st_size else
                   "it is compressed" if streams.sniff(os.pread(fd, 8, offset)) else "")
            if why:
                self.debug("%s: streamed from the archive (%s)" % (what, why))
                return None
            self.debug("%s: read in place from %s" % (what, path))
            if self.max_layer_size is not None and size > self.max_layer_size:
                raise SizeLimitExceeded(
                    "%s unpacks to more than %s; refusing it (a decompression bomb guard: raise "
                    "--max-layer-size or ROOTLESS_MAX_LAYER_SIZE if the image is genuine)"
                    % (what, streams.human_size(self.max_layer_size)))
            hasher = streams.RegionHasher(fd, offset, size)
            try:
                record = layers.unpack_region(fd, offset, size, os.path.join(layer_dir, "diff"), self.debug,
                                              self.max_layer_size, split_dir=layer_dir)
            except BaseException:
                hasher.stop()
                raise
            return record, hasher.digest(), size
        finally:
            os.close(fd)

    def _keep_blob(self, open_blob, digest: str, work: str) -> None:
        from rootless import streams
        tmp = os.path.join(work, "blob")
        with open_blob() as src, streams.BlobSink(tmp) as sink:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                sink.write(chunk)
        if sink.digest != digest:
            raise DigestMismatch("layer blob changed while it was read (%s, then %s)" % (digest, sink.digest))
        self.commit_blob(tmp, digest)

    # -- the index ----------------------------------------------------------------------

    def _read_index(self) -> Dict[str, ImageRecord]:
        data = fsutil.read_json(self.paths.images_index, {"version": INDEX_VERSION, "images": {}})
        if data.get("version") != INDEX_VERSION:
            raise StoreError("%s has index version %r; this rootless understands %d"
                             % (self.paths.images_index, data.get("version"), INDEX_VERSION))
        return {k: ImageRecord.from_json(v) for k, v in data["images"].items()}

    def _write_index(self, images: Dict[str, ImageRecord]) -> None:
        fsutil.atomic_write_json(self.paths.images_index, {
            "version": INDEX_VERSION, "images": {k: v.to_json() for k, v in images.items()}},
            0o600 | (self._shared_bits() & 0o044))

    def _shared_bits(self) -> int:
        """The group/other read and search bits of the store's root, read once."""
        if self._share_bits is None:
            from rootless.image import stores
            self._share_bits = stores.share_bits(self.paths.root)
        return self._share_bits

    def _with_shared(self, own: Dict[str, ImageRecord]) -> Dict[str, ImageRecord]:
        """``own`` and, after it, the images stores' (``image.stores.merge``)."""
        if not self.shared:
            return own
        from rootless.image import stores
        merged, origin = stores.merge(own, self.shared_indexes())
        self.origin.update(origin)
        return merged

    def shared_indexes(self):
        """(root, index) of each image store, read once a command (a store's preparer
        replaces its index atomically: one snapshot serves the whole command)."""
        if self._indexes is None:
            from rootless.image import stores
            self._indexes = [(paths.root, stores.read_index(paths)) for paths in self.shared]
        return self._indexes

    def images(self, shared: bool = True) -> List[ImageRecord]:
        """Every image, the image stores' included unless ``shared`` is false."""
        index = self._read_index()
        if shared:
            index = self._with_shared(index)
        return sorted(index.values(), key=lambda r: (r.created, r.added), reverse=True)

    def update_index(self, change: Callable[[Dict[str, ImageRecord]], object]):
        """Apply ``change`` to the index under the index lock and write it atomically."""
        self.ensure()
        with self.lock("index.lock"):
            images = self._read_index()
            result = change(images)
            self._write_index(images)
            return result

    def add_image(self, record: ImageRecord, tags: Iterable[str] = ()) -> ImageRecord:
        """List an image whose blobs and layers are all in the store; move ``tags`` to it."""
        for d in [record.id, record.manifest]:
            self.blob_path(d)
        for diff_id in record.layers:
            if not self.layer_info(diff_id):
                raise StoreError("layer %s of image %s is missing" % (diff_id, record.id))

        def change(images):
            current = images.get(record.id)
            if current:
                record.repo_tags = list(current.repo_tags)
                record.repo_digests = sorted(set(current.repo_digests) | set(record.repo_digests))
                record.added = current.added
            _retag(images, record, tags)
            images[record.id] = record
            return record
        return self.update_index(change)

    def lookup(self, name: str) -> ImageRecord:
        """Find an image by name[:tag], name@digest, full ID or unique ID prefix."""
        return find_image(self._with_shared(self._read_index()), name)

    def tag(self, source: str, target: str) -> None:
        ref = reference.parse(target)
        if ref.digest:
            raise InvalidImage("cannot tag with a digest: %s" % target)

        def change(images):
            found = find_image(self._with_shared(images), source)
            # An image store's image tagged here is listed here too (its parts stay there).
            record = images.setdefault(found.id, ImageRecord(
                found.id, found.manifest, list(found.layers), [], list(found.repo_digests),
                found.created, found.size, time.time()))
            _retag(images, record, [str(ref)])
        self.update_index(change)

    def usage(self):
        """What containers use (``removal.Usage``), from the provider the CLI gave; the
        store cannot read container records itself (``image/`` never imports ``runtime/``)."""
        from rootless.image.removal import Usage
        return self._usage() if self._usage else Usage()

    def remove(self, name: str, force: bool = False, usage=None, collect: bool = True) -> List[str]:
        """Docker's rmi (see ``removal``): untag a name, delete an image no name and no
        container keeps. Returns Docker's ``Untagged: ...`` / ``Deleted: ...`` lines. With
        ``collect=False`` the caller collects garbage once after removing several images.
        """
        from rootless.image import removal
        usage = usage if usage is not None else self.usage()

        def change(images):
            try:
                own = find_image(images, name)
            except NotFound:
                found = find_image(self._with_shared(images), name)  # NotFound: not anywhere
                from rootless.image import stores
                where = stores.naming(self.shared_indexes(), name) or self.origin.get(found.id, "")
                raise Conflict("image %s is in the read-only image store %s; remove it there "
                               "(rootless --root %s rmi %s)" % (name, where, where, name))
            return removal.remove(images, own, name, force, usage)
        lines = self.update_index(change)
        if collect:
            self.collect_garbage(blocking=False)
        return lines

    # -- garbage ------------------------------------------------------------------------

    def collect_garbage(self, blocking: bool = True) -> Dict[str, int]:
        """Remove abandoned work, and blobs and layers that neither a listed image nor a
        container uses (a container of an image ``rmi -f ID`` deleted still needs them).

        Container creation holds the GC lock shared (as loads do) from the moment it looks
        the image up until its record names the layers, so what it uses is never collected.
        """
        self.ensure()
        removed = {"work": 0, "blobs": 0, "layers": 0, "bytes": 0}
        gc = self.lock("gc.lock", shared=False, blocking=blocking)
        if not gc.acquire():
            return removed  # a load is under way; the next command will collect
        try:
            removed["work"] = fsutil.WorkDir.collect_abandoned(self.paths.tmp)
            in_use = self.usage().layers
            with self.lock("index.lock"):
                keep_blobs, keep_layers = self._kept(self._read_index().values(), in_use)
                for name in os.listdir(self.paths.layers):
                    if name not in keep_layers:
                        removed["bytes"] += fsutil.tree_size(os.path.join(self.paths.layers, name))
                        fsutil.remove_tree(os.path.join(self.paths.layers, name))
                        removed["layers"] += 1
                for name in os.listdir(self.paths.blobs):
                    if name not in keep_blobs:
                        path = os.path.join(self.paths.blobs, name)
                        removed["bytes"] += os.lstat(path).st_size
                        os.unlink(path)
                        removed["blobs"] += 1
        finally:
            gc.release()
        return removed

    def _kept(self, records: Iterable[ImageRecord], layers_in_use: Iterable[str]):
        """(blob hexes, layer hexes) to keep: those of the images, and the layers (with any
        blob a layer keeps to reproduce itself) that containers use."""
        blobs, layers = set(), set(layers_in_use)
        for rec in records:
            blobs.update((rec.id, rec.manifest))
            layers.update(rec.layers)
        for diff_id in layers:
            meta = fsutil.read_json(os.path.join(self.paths.layer(diff_id), "meta.json")) or {}
            if meta.get("blob"):
                blobs.add(meta["blob"])
        return {paths_mod.digest_hex(d) for d in blobs}, {paths_mod.digest_hex(d) for d in layers}


def find_image(images: Dict[str, ImageRecord], name: str) -> ImageRecord:
    """Docker's order: a name (with its default tag) first, then an image ID prefix."""
    try:
        ref = reference.parse(name)
    except UsageError:
        ref = None
    if ref is not None:
        full = str(ref)
        for rec in images.values():
            if full in rec.repo_tags or full in rec.repo_digests:
                return rec
    if reference.is_id_prefix(name):
        hexpart = name[7:] if name.startswith("sha256:") else name
        matches = [r for r in images.values() if r.id[7:].startswith(hexpart)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise Conflict("image ID prefix %r is ambiguous; give more characters" % name)
    raise NotFound("no such image: %s" % name)


def _retag(images: Dict[str, ImageRecord], record: ImageRecord, tags: Iterable[str]) -> None:
    """Give ``record`` each tag, taking it from whichever image had it (as Docker does)."""
    for tag in tags:
        for other in images.values():
            if other is not record and tag in other.repo_tags:
                other.repo_tags.remove(tag)
        if tag not in record.repo_tags:
            record.repo_tags.append(tag)


def _media_type(compression: str) -> str:
    base = "application/vnd.oci.image.layer.v1.tar"
    return base + ("+" + compression if compression else "")


def _env_size(name: str) -> Optional[int]:
    value = os.environ.get(name)
    if not value:
        return None
    from rootless.streams import parse_size
    return parse_size(value)
