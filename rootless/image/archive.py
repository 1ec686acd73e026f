"""Offline image transport: ``load``, ``save`` and ``import``.

Formats read: ``docker save`` archives (the classic layout and Docker >= 25's OCI-style one,
plain or gzip-compressed), OCI image layout archives (``oci-archive``), and OCI layout
directories. Formats written: docker-archive (default) and oci-archive.

Everything named inside an archive is looked up among the archive's own members; nothing in
an archive is ever resolved on the host. Every blob is verified against its digest (or, for
classic docker archives, every layer against the config's diff_ids) before the image is
listed; all images of one archive are listed together, or none.
"""

import io
import os
import posixpath
import sys
import tarfile
import time
from typing import Dict, List, NamedTuple, Optional, Tuple

from rootless import jsonfast
from rootless.errors import InvalidImage, NotFound, UsageError
from rootless.image import manifest as mf
from rootless.image import reference
from rootless.image.store import ImageRecord, LayerInfo, Store
from rootless.streams import Reader, decompressing, sniff

MAX_LINK_DEPTH = 16


# -- reading archives ----------------------------------------------------------------------

class ArchiveSource:
    """Named members of an image archive: a tar file or an OCI layout directory."""

    def __init__(self, path: str, name: Optional[str] = None):
        self.path, self.name = path, name or path
        self.dir = os.path.isdir(path)
        self.tar = None if self.dir else _open_tar(path, self.name)
        self.members: Dict[str, tarfile.TarInfo] = {}
        if self.tar is not None:
            try:
                members = self.tar.getmembers()
            except (tarfile.TarError, EOFError) as e:
                self.tar.close()
                raise InvalidImage("%s is damaged or truncated (%s)" % (self.name, e))
            for m in members:
                self.members[_clean(m.name)] = m

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()

    def has(self, name: str) -> bool:
        try:
            self._resolve(name)
            return True
        except InvalidImage:
            return False

    def _resolve(self, name: str) -> str:
        rel = _clean(name)
        if rel.startswith("../") or rel == ".." or rel == "":
            raise InvalidImage("archive names %r, which lies outside the archive" % name[:200])
        if self.dir:
            path = os.path.join(self.path, rel)
            # An OCI layout directory is read only below itself, never through symlinks.
            if os.path.realpath(path) != os.path.join(os.path.realpath(self.path), rel) or not os.path.isfile(path):
                raise InvalidImage("OCI layout %s has no regular file %s" % (self.path, rel))
            return rel
        for _ in range(MAX_LINK_DEPTH):
            m = self.members.get(rel)
            if m is None:
                raise InvalidImage("archive has no member %r (it is damaged, or not an image archive)" % name[:200])
            if m.isreg():
                return rel
            if m.issym() or m.islnk():
                base = posixpath.dirname(rel) if m.issym() else ""
                rel = _clean(posixpath.join(base, m.linkname))
                if rel.startswith("../"):
                    raise InvalidImage("archive member %r links outside the archive" % name[:200])
                continue
            raise InvalidImage("archive member %r is not a file" % name[:200])
        raise InvalidImage("archive member %r: too many links" % name[:200])

    def open(self, name: str):
        rel = self._resolve(name)
        if self.dir:
            return open(os.path.join(self.path, rel), "rb")
        return self.tar.extractfile(self.members[rel])

    def region(self, name: str) -> Optional["tuple[str, int, int]"]:
        """Where member ``name`` lies as plain bytes of a local file: (path, offset, size)."""
        rel = self._resolve(name)
        if self.dir:
            path = os.path.join(self.path, rel)
            return path, 0, os.stat(path).st_size
        m = self.members[rel]
        return (self.path, m.offset_data, m.size) if m.sparse is None else None

    def read(self, name: str, limit: int = mf.MAX_JSON) -> bytes:
        with self.open(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise InvalidImage("archive member %r is larger than %d bytes" % (name, limit))
        return data


def _clean(name: str) -> str:
    """A member name as a normalised relative path ("../x" stays visibly outside)."""
    rel = posixpath.normpath(name.lstrip("/")) if name.strip("/") else ""
    return "" if rel == "." else rel


def _open_tar(path: str, name: str):
    try:
        return tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as e:
        raise InvalidImage("%s is not an image archive (%s)" % (name, e))


class PendingImage(NamedTuple):
    """An image read from an archive, ready to ingest. (A NamedTuple, not a dataclass:
    importing dataclasses costs ~25 ms, 2% of a whole ``load``.)"""

    config: bytes
    config_digest: str
    layers: List[Tuple[str, Optional[str], str]]  # (member, blob digest or None, diff_id)
    tags: List[str]
    manifest: Optional[bytes] = None  # the archive's own manifest, kept when verified


def read_images(src: ArchiveSource) -> List[PendingImage]:
    if src.has("manifest.json"):
        return _docker_images(src)
    if src.has("index.json"):
        return _oci_images(src)
    raise InvalidImage("%s holds neither manifest.json (docker save) nor index.json (OCI "
                       "layout); is it an image archive?" % src.name)


def _docker_images(src: ArchiveSource) -> List[PendingImage]:
    entries = mf.load_json(src.read("manifest.json"), "manifest.json")
    if not isinstance(entries, list) or not entries:
        raise InvalidImage("manifest.json is not a non-empty list of images")
    images = []
    for i, entry in enumerate(entries):
        what = "manifest.json entry %d" % i
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) or not isinstance(entry.get("Layers"), list):
            raise InvalidImage("%s lacks Config or Layers" % what)
        config = src.read(entry["Config"])
        digest = mf.sha256(config)
        _check_blob_name(entry["Config"], digest)
        diff_ids = mf.parse_config(config)["rootfs"]["diff_ids"]
        if len(diff_ids) != len(entry["Layers"]):
            raise InvalidImage("%s lists %d layers but its config has %d diff_ids"
                               % (what, len(entry["Layers"]), len(diff_ids)))
        layers = []
        for name, diff_id in zip(entry["Layers"], diff_ids):
            if not isinstance(name, str):
                raise InvalidImage("%s has a non-string layer path" % what)
            layers.append((name, _blob_name_digest(name), diff_id))
        repo_tags = entry.get("RepoTags") or []
        if not isinstance(repo_tags, list):
            raise InvalidImage("%s: RepoTags is not a list" % what)
        tags = [_tag(t) for t in repo_tags]
        images.append(PendingImage(config, digest, layers, tags))
    return images


def _oci_images(src: ArchiveSource) -> List[PendingImage]:
    index = mf.parse_manifest(src.read("index.json"), "index.json")
    if not mf.is_index(index):
        raise InvalidImage("index.json is not an image index")
    images = []
    for entry in index.get("manifests") or []:
        desc = mf.descriptor(entry, "index.json entry")
        annotations = desc.get("annotations") or {}
        data = _read_blob(src, desc)
        m = mf.parse_manifest(data, "manifest %s" % desc["digest"])
        if mf.is_index(m):
            picks = mf.pick_platform(m, mf.host_platform())
            if not picks:
                raise InvalidImage("image index %s has no manifest for %s" % (desc["digest"], mf.host_platform()))
            data = _read_blob(src, picks[0])
            m = mf.parse_manifest(data, "manifest %s" % picks[0]["digest"])
            if mf.is_index(m):
                raise InvalidImage("nested image indexes are not supported")
        config = _read_blob(src, m["config"])
        diff_ids = mf.parse_config(config)["rootfs"]["diff_ids"]
        if len(diff_ids) != len(m["layers"]):
            raise InvalidImage("manifest %s has %d layers but its config has %d diff_ids"
                               % (desc["digest"], len(m["layers"]), len(diff_ids)))
        layers = [(_blob_path(l["digest"]), l["digest"], d) for l, d in zip(m["layers"], diff_ids)]
        images.append(PendingImage(config, m["config"]["digest"], layers, _oci_tags(annotations), data))
    if not images:
        raise InvalidImage("index.json lists no images")
    return images


def _oci_tags(annotations: dict) -> List[str]:
    name = annotations.get("io.containerd.image.name") or annotations.get("org.opencontainers.image.ref.name")
    if not isinstance(name, str) or not ("/" in name or ":" in name):
        return []  # a bare ref name such as "latest" names no repository: load it untagged
    return [_tag(name)]


def _tag(text) -> str:
    if not isinstance(text, str):
        raise InvalidImage("archive has a non-string tag")
    try:
        ref = reference.parse(text)
    except UsageError as e:
        raise InvalidImage("archive names an invalid tag: %s" % e)
    if ref.digest:
        raise InvalidImage("archive tag %r carries a digest" % text)
    return str(ref)


def _blob_path(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return "blobs/%s/%s" % (algo, hexpart)


def _blob_name_digest(name: str) -> Optional[str]:
    parts = _clean(name).split("/")
    if len(parts) == 3 and parts[0] == "blobs" and parts[1] == "sha256":
        return mf.check_digest("sha256:" + parts[2], name)
    return None


def _check_blob_name(name: str, digest: str) -> None:
    named = _blob_name_digest(name)
    if named and named != digest:
        from rootless.errors import DigestMismatch
        raise DigestMismatch("%s hashes to %s; the archive is damaged or tampered with" % (name, digest))


def _read_blob(src: ArchiveSource, desc: dict) -> bytes:
    data = src.read(_blob_path(desc["digest"]))
    _check_blob_name(_blob_path(desc["digest"]), mf.sha256(data))
    if len(data) != desc["size"]:
        raise InvalidImage("blob %s is %d bytes, the descriptor says %d" % (desc["digest"], len(data), desc["size"]))
    return data


# -- load ----------------------------------------------------------------------------------

def load(store: Store, path: Optional[str], stdin=None) -> List[str]:
    """Load every image in an archive (``path`` None or "-" reads stdin); return the lines
    Docker prints (``Loaded image: NAME:TAG`` / ``Loaded image ID: sha256:...``)."""
    store.ensure()
    store.collect_garbage(blocking=False)
    with store.writing(), store.work_dir("load-") as work:
        source = _local_archive(path, stdin, work.path, store.max_layer_size)
        src = ArchiveSource(source, "stdin" if path in (None, "-") else path)
        try:
            pending = read_images(src)
            records = [_ingest(store, src, p) for p in pending]
        finally:
            src.close()
        return _list_images(store, records, pending)


def _local_archive(path: Optional[str], stdin, work: str, limit: int) -> str:
    """A seekable, uncompressed archive to read: the file itself, or a spooled copy."""
    if path not in (None, "-"):
        if os.path.isdir(path):
            return path
        try:
            f = open(path, "rb")
        except OSError as e:
            raise NotFound("cannot open %s: %s" % (path, e.strerror))
        with f:
            compression = sniff(f.read(8))
            if not compression:
                return path
            f.seek(0)
            return _spool(decompressing(f, compression), work, limit)
    raw = stdin if stdin is not None else sys.stdin.buffer
    if hasattr(raw, "isatty") and raw.isatty():
        raise UsageError("requested load from stdin, but stdin is a terminal; use -i FILE or a pipe")
    from rootless.streams import PeekReader
    peek = PeekReader(raw)
    compression = sniff(peek.head)
    return _spool(decompressing(peek, compression), work, limit)


def _spool(reader, work: str, limit: int) -> str:
    """Copy a compressed or piped archive to a seekable file. The layer size guard bounds
    the whole decompressed archive too, so a compressed bomb cannot fill the disk here."""
    from rootless.streams import HashingReader
    bounded = HashingReader(reader, limit, "the decompressed archive")
    dest = os.path.join(work, "archive.tar")
    with open(dest, "wb") as out:
        while True:
            chunk = bounded.read(1 << 20)
            if not chunk:
                break
            out.write(chunk)
    return dest


def _ingest(store: Store, src: ArchiveSource, p: PendingImage) -> ImageRecord:
    infos = []
    for i, (member, blob, diff_id) in enumerate(p.layers):
        what = "layer %d/%d (%s)" % (i + 1, len(p.layers), diff_id[7:19])
        infos.append(store.ingest_layer(lambda m=member: src.open(m), blob, diff_id, what,
                                        region=src.region(member) if src.has(member) else None))
    store.put_blob_bytes(p.config, p.config_digest)
    data = p.manifest
    if data is None or [l["digest"] for l in jsonfast.loads(data)["layers"]] != [i.blob for i in infos]:
        # The archive's manifest names blobs we did not keep (its layers were already in
        # the store in another compression): describe the blobs we do have.
        data = mf.build_manifest(p.config_digest, len(p.config), infos, docker=True)
    manifest_digest = store.put_blob_bytes(data)
    config = jsonfast.loads(p.config)
    return ImageRecord(id=p.config_digest, manifest=manifest_digest,
                       layers=[i.diff_id for i in infos], created=config.get("created") or "",
                       size=sum(i.content_size for i in infos), added=time.time())


def _list_images(store: Store, records: List[ImageRecord], pending: List[PendingImage]) -> List[str]:
    lines = []
    for rec, p in zip(records, pending):
        store.add_image(rec, p.tags)
        if p.tags:
            lines.extend("Loaded image: " + reference.familiar(t) for t in p.tags)
        else:
            lines.append("Loaded image ID: " + rec.id)
    return lines


# -- import --------------------------------------------------------------------------------

def import_tarball(store: Store, path: Optional[str], name: Optional[str], message: str = "",
                   stdin=None) -> str:
    """Make a one-layer image from a root file system tarball; return its ID."""
    tag = str(reference.parse(name)) if name else None
    if tag and reference.parse(name).digest:
        raise UsageError("import: the name must not carry a digest: %s" % name)
    store.ensure()
    with store.writing():
        if path in (None, "-"):
            raw = stdin if stdin is not None else sys.stdin.buffer
            info = store.ingest_layer(lambda: _NoClose(raw), what="imported tarball")
        else:
            if not os.path.isfile(path):
                raise NotFound("import: no such file: %s" % path)
            info = store.ingest_layer(lambda: open(path, "rb"), what="imported tarball")
        now = _rfc3339(time.time())
        plat = mf.host_platform()
        config = {
            "architecture": plat["architecture"], "os": "linux", "created": now,
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [info.diff_id]},
            "history": [{"created": now, "created_by": "rootless import " + (path or "-"),
                         "comment": message or "Imported from " + (path or "-")}],
        }
        data = jsonfast.dumps(config, sort_keys=True).encode()
        digest = store.put_blob_bytes(data)
        manifest = store.put_blob_bytes(mf.build_manifest(digest, len(data), [info], docker=True))
        rec = ImageRecord(id=digest, manifest=manifest, layers=[info.diff_id], created=now,
                          size=info.content_size, added=time.time())
        store.add_image(rec, [tag] if tag else [])
    return digest


class _NoClose(Reader):
    """stdin for ``import -``: read through, never closed by the layer reader."""

    def __init__(self, raw):
        self.raw = raw

    def read(self, n=-1):
        return self.raw.read(n)

    def close(self):
        pass


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%09dZ" % int((t % 1) * 1e9)


# -- save ----------------------------------------------------------------------------------

def save(store: Store, names: List[str], output: Optional[str], fmt: str = "docker-archive",
         stdout=None) -> None:
    """Write images to an archive; a file appears complete or not at all."""
    if fmt not in ("docker-archive", "oci-archive"):
        raise UsageError("unknown --format %r: use docker-archive or oci-archive" % fmt)
    if not names:
        raise UsageError("save needs at least one image")
    chosen: List[Tuple[ImageRecord, List[str]]] = []
    for name in names:
        rec = store.lookup(name)
        tags = [] if reference.is_id_prefix(name) and name not in _familiar_tags(rec) else [str(reference.parse(name))]
        tags = [t for t in tags if t in rec.repo_tags]
        for prev, prev_tags in chosen:
            if prev.id == rec.id:
                prev_tags.extend(t for t in tags if t not in prev_tags)
                break
        else:
            chosen.append((rec, tags))
    writer = _write_docker if fmt == "docker-archive" else _write_oci
    if output in (None, "-"):
        out = stdout if stdout is not None else sys.stdout.buffer
        if hasattr(out, "isatty") and out.isatty():
            raise UsageError("cowardly refusing to save to a terminal; use -o FILE or redirect")
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            writer(store, tar, chosen)
        return
    directory = os.path.dirname(os.path.abspath(output))
    import tempfile
    fd, tmp = tempfile.mkstemp(prefix=".rootless-save-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                writer(store, tar, chosen)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, output)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _familiar_tags(rec: ImageRecord) -> List[str]:
    return [reference.familiar(t) for t in rec.repo_tags]


def _add_bytes(tar, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)


def _add_layer(tar, name: str, store: Store, diff_id: str) -> None:
    """Write a layer as its original uncompressed tar stream (so its digest is the diff_id)."""
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = 0o644, 0
    info.size = store.layer_meta(diff_id)["tar_size"]
    with store.open_layer(diff_id) as f:
        tar.addfile(info, f)
        if f.read(1):
            raise InvalidImage("layer %s is longer than recorded; remove the image and load it "
                               "again" % diff_id)


def _write_docker(store: Store, tar, chosen) -> None:
    """Docker's classic save layout, which docker, podman and skopeo all read."""
    entries, repositories, written = [], {}, set()
    for rec, tags in chosen:
        config_name = rec.id[7:] + ".json"
        if config_name not in written:
            _add_bytes(tar, config_name, store.read_blob(rec.id))
            written.add(config_name)
        layer_names = []
        for diff_id in rec.layers:
            name = diff_id[7:] + "/layer.tar"
            if name not in written:
                _add_dir(tar, diff_id[7:])
                _add_layer(tar, name, store, diff_id)
                written.add(name)
            layer_names.append(name)
        familiar = [reference.familiar(t) for t in tags]
        entries.append({"Config": config_name, "RepoTags": familiar or None, "Layers": layer_names})
        for t in tags:
            ref = reference.parse(t)
            repositories.setdefault(ref.familiar_repository, {})[ref.tag] = rec.layers[-1][7:] if rec.layers else ""
    _add_bytes(tar, "manifest.json", jsonfast.dumps(entries, separators=(",", ":")).encode())
    if repositories:
        _add_bytes(tar, "repositories", jsonfast.dumps(repositories).encode())


def _write_oci(store: Store, tar, chosen) -> None:
    """An OCI image layout: oci-layout, index.json, blobs/sha256/..."""
    _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    _add_dir(tar, "blobs")
    _add_dir(tar, "blobs/sha256")
    written, manifests = set(), []

    def blob(digest: str, data: bytes) -> None:
        if digest not in written:
            written.add(digest)
            _add_bytes(tar, _blob_path(digest), data)

    for rec, tags in chosen:
        config = store.read_blob(rec.id)
        infos = []
        for diff_id in rec.layers:
            # Layers are written uncompressed: the blob digest is the diff_id and the image
            # ID (the config digest) is unchanged.
            info = store.layer_info(diff_id)
            if info is None:
                raise NotFound("image %s has lost a layer; remove and load it again" % rec.id[7:19])
            infos.append(LayerInfo(diff_id, diff_id, mf.OCI_LAYER, info.tar_size, info.tar_size,
                                   info.content_size))
        data = mf.build_manifest(rec.id, len(config), infos, docker=False)
        digest = mf.sha256(data)
        blob(rec.id, config)
        for info in infos:
            if info.blob not in written:
                written.add(info.blob)
                _add_layer(tar, _blob_path(info.blob), store, info.diff_id)
        blob(digest, data)
        for t in tags or [None]:
            entry = {"mediaType": mf.OCI_MANIFEST, "digest": digest, "size": len(data)}
            if t:
                entry["annotations"] = {"org.opencontainers.image.ref.name": reference.familiar(t),
                                        "io.containerd.image.name": t}
            manifests.append(entry)
    index = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": manifests}
    _add_bytes(tar, "index.json", jsonfast.dumps(index).encode())
