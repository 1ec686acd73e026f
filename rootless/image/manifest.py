"""Image manifests and configs: validation of what arrives, construction of what we write.

Pure functions over bytes and dicts. Media types are the OCI image spec's and Docker's
schema 2; schema 1 is refused.
"""

import json
import os
import re
from typing import List, Sequence

from rootless.errors import InvalidImage

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MAX_JSON = 16 << 20

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")


def load_json(data: bytes, what: str) -> dict:
    if len(data) > MAX_JSON:
        raise InvalidImage("%s is larger than %d bytes; refusing it" % (what, MAX_JSON))
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise InvalidImage("%s is not valid JSON (%s)" % (what, e))
    return obj


def check_digest(value, what: str) -> str:
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise InvalidImage("%s: %r is not a sha256 digest" % (what, str(value)[:80]))
    return value


def parse_config(data: bytes, what: str = "image config") -> dict:
    """Validate an image config enough to store and run it; return it."""
    cfg = load_json(data, what)
    if not isinstance(cfg, dict):
        raise InvalidImage("%s is not a JSON object" % what)
    rootfs = cfg.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" or not isinstance(rootfs.get("diff_ids"), list):
        raise InvalidImage("%s has no rootfs.diff_ids list" % what)
    for d in rootfs["diff_ids"]:
        check_digest(d, what + " diff_ids")
    for key in ("architecture", "os", "created"):
        if key in cfg and not isinstance(cfg[key], str):
            raise InvalidImage("%s: %s is not a string" % (what, key))
    if "config" in cfg and cfg["config"] is not None and not isinstance(cfg["config"], dict):
        raise InvalidImage("%s: config is not an object" % what)
    if "history" in cfg and not isinstance(cfg["history"], list):
        raise InvalidImage("%s: history is not a list" % what)
    return cfg


def descriptor(obj, what: str) -> dict:
    if not isinstance(obj, dict):
        raise InvalidImage("%s is not a descriptor object" % what)
    check_digest(obj.get("digest"), what)
    size = obj.get("size")
    if not isinstance(size, int) or size < 0:
        raise InvalidImage("%s has no valid size" % what)
    if not isinstance(obj.get("mediaType", ""), str):
        raise InvalidImage("%s has a bad mediaType" % what)
    return obj


def parse_manifest(data: bytes, what: str = "manifest") -> dict:
    """Validate an image manifest (OCI or Docker schema 2)."""
    m = load_json(data, what)
    if not isinstance(m, dict):
        raise InvalidImage("%s is not a JSON object" % what)
    if m.get("schemaVersion") == 1:
        raise InvalidImage("%s is Docker schema 1, which is deprecated and not supported; "
                           "re-push the image with a current tool" % what)
    if m.get("schemaVersion") != 2:
        raise InvalidImage("%s has schemaVersion %r, expected 2" % (what, m.get("schemaVersion")))
    media = m.get("mediaType", OCI_MANIFEST)
    if media in INDEX_TYPES or "manifests" in m:
        return m
    if media not in MANIFEST_TYPES:
        raise InvalidImage("%s has unknown mediaType %r" % (what, media))
    descriptor(m.get("config"), what + " config")
    layers = m.get("layers")
    if not isinstance(layers, list):
        raise InvalidImage("%s has no layers list" % what)
    for i, layer in enumerate(layers):
        descriptor(layer, "%s layer %d" % (what, i))
    return m


def is_index(m: dict) -> bool:
    return m.get("mediaType") in INDEX_TYPES or ("manifests" in m and "layers" not in m)


def host_platform() -> dict:
    machine = os.uname().machine  # (what platform.machine() reads, without its import)
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)
    plat = {"os": "linux", "architecture": arch}
    if machine == "armv7l":
        plat["variant"] = "v7"
    return plat


def pick_platform(index: dict, want: dict) -> List[dict]:
    """The index entries for platform ``want``, best first (variant matches preferred)."""
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise InvalidImage("image index has no manifests list")
    exact, loose = [], []
    for e in entries:
        descriptor(e, "image index entry")
        p = e.get("platform") or {}
        if p.get("os", want["os"]) != want["os"] or p.get("architecture", want["architecture"]) != want["architecture"]:
            continue
        (exact if p.get("variant") == want.get("variant") else loose).append(e)
    return exact + loose


def layer_media_type(compression: str, docker: bool) -> str:
    if docker:
        return DOCKER_LAYER_GZIP if compression == "gzip" else DOCKER_LAYER
    return OCI_LAYER + ("+" + compression if compression else "")


def compression_of(media_type: str) -> str:
    for suffix in ("gzip", "zstd"):
        if media_type.endswith("+" + suffix) or media_type.endswith("." + suffix):
            return suffix
    return ""


def build_manifest(config_digest: str, config_size: int, layers: Sequence, docker: bool) -> bytes:
    """A schema 2 manifest (Docker's or OCI's) for a config and ``LayerInfo``s; canonical bytes."""
    m = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                   "size": config_size, "digest": config_digest},
        "layers": [{"mediaType": layer_media_type(compression_of(l.media_type), docker),
                    "size": l.blob_size, "digest": l.blob} for l in layers],
    }
    return json.dumps(m, indent=3).encode()


def sha256(data: bytes) -> str:
    import hashlib
    return "sha256:" + hashlib.sha256(data).hexdigest()
