"""Build image archives in tests, independently of rootless's own writer.

Used for hostile and edge-case archives the Debian tools would never produce. Each
function returns bytes or writes a file; nothing here imports rootless.
"""

import gzip
import hashlib
import io
import json
import tarfile


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT) -> bytes:
    """entries: list of (TarInfo-like dict) e.g. {"name": "a", "data": b"x"} or type keys."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.mode = e.get("mode", 0o755 if e.get("type") == "dir" else 0o644)
            info.uid, info.gid = e.get("uid", 0), e.get("gid", 0)
            info.mtime = e.get("mtime", 1700000000)
            kind = e.get("type", "file")
            data = e.get("data", b"")
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e["target"]
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, e["target"]
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, e.get("major", 1), e.get("minor", 3)
            if "pax" in e:
                info.pax_headers = e["pax"]
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def config_for(layers, **extra) -> bytes:
    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
           "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
           "rootfs": {"type": "layers", "diff_ids": [sha(l) for l in layers]},
           "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "test layer %d" % i}
                       for i in range(len(layers))]}
    cfg.update(extra)
    return json.dumps(cfg).encode()


def docker_archive(layers, tags=("test/image:latest",), config=None, manifest=None,
                   extra_members=(), layer_blobs=None) -> bytes:
    """A classic ``docker save`` archive. ``layer_blobs`` may override what is stored."""
    config = config if config is not None else config_for(layers)
    cfg_name = sha(config)[7:] + ".json"
    blobs = layer_blobs if layer_blobs is not None else layers
    names = ["%s/layer.tar" % sha(l)[7:] for l in layers]
    entries = [{"name": cfg_name, "data": config}]
    entries += [{"name": n, "data": b} for n, b in zip(names, blobs)]
    man = manifest if manifest is not None else [{"Config": cfg_name, "RepoTags": list(tags), "Layers": names}]
    entries.append({"name": "manifest.json", "data": json.dumps(man).encode()})
    entries += list(extra_members)
    return tar_bytes(entries)


def oci_archive(layers, ref_name="docker.io/test/oci:1", compress=True, config=None) -> bytes:
    blobs = [gzip.compress(l, mtime=0) if compress else l for l in layers]
    config = config if config is not None else config_for(layers)
    media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": media, "digest": sha(b), "size": len(b)} for b in blobs],
    }).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": ref_name}}]}
    entries = [{"name": "oci-layout", "data": b'{"imageLayoutVersion":"1.0.0"}'},
               {"name": "index.json", "data": json.dumps(index).encode()}]
    for b in [config, manifest] + blobs:
        entries.append({"name": "blobs/sha256/" + sha(b)[7:], "data": b})
    return tar_bytes(entries)


def unpack_growing(data: bytes, dest: str, **kw):
    """``layers.unpack_region`` of ``data`` while a thread is still writing it to the file,
    in uneven pieces and with pauses, as a pull writes an inflating layer
    (``streams.Growing``): every read must wait for its bytes, never see a short file."""
    import os
    import tempfile
    import threading
    import time
    from rootless import streams
    from rootless.storage import layers
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer.tar")
        out = open(path, "wb", buffering=0)
        growing = streams.Growing(path)

        def write():
            sizes, at, n = (1, 511, 700, 4096, 100000), 0, 0
            try:
                while at < len(data):
                    piece = data[at:at + sizes[n % len(sizes)]]
                    out.write(piece)
                    at += len(piece)
                    n += 1
                    growing.grew(len(piece))
                    if n % 7 == 0:
                        time.sleep(0.001)
                growing.finish(sha(data))
            finally:
                out.close()
        writer = threading.Thread(target=write)
        writer.start()
        try:
            bound = kw.get("max_size") or 1 << 62
            return layers.unpack_region(growing.fd, 0, bound, dest, growing=growing, **kw)
        finally:
            writer.join()
            growing.close()
