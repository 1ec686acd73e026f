"""``push``: an image from the store to a registry.

Layers are pushed as their uncompressed tar streams, rebuilt from the store (layer blobs
are not kept, see docs/design.md): the blob digest is then the diff_id, so image ID and
diff_ids never change and nothing has to be compressed on the way. For each layer:

1. HEAD: the registry has the blob already -> skip it;
2. another repository of the same registry is known to hold it (the image's
   RepoDigests) -> a cross-repository mount, no data sent;
3. otherwise an upload: one PUT for a blob up to ``CHUNK`` bytes, else PATCH chunks of
   ``CHUNK`` bytes (each read into memory once, so memory stays bounded) and a final PUT.

Then the config blob, then the manifest (Docker's schema 2), whose digest is printed and
added to the image's RepoDigests.
"""

import urllib.parse
from typing import List, Optional

from rootless.errors import DigestMismatch, InvalidImage
from rootless.image import manifest as mf
from rootless.image import reference
from rootless.image.store import Store

CHUNK = 16 << 20


class _Layer:
    def __init__(self, diff_id: str, size: int):
        self.blob = self.diff_id = diff_id
        self.blob_size = size
        self.media_type = mf.DOCKER_LAYER


def push(store: Store, name: str, tls_verify: Optional[bool] = None, cert_dir: Optional[str] = None,
         quiet: bool = False, debug=None, out=None) -> str:
    import sys
    from rootless.image import regconfig
    from rootless.image.pull import Progress
    from rootless.image.registry import Client
    out = out or sys.stdout
    record = store.lookup(name)
    ref = reference.parse(name)
    if ref.digest:
        raise InvalidImage("cannot push to a digest reference (%s); give a tag" % name)
    progress = Progress(quiet, out)
    client = Client(ref.domain, regconfig.RegistryConfig.load(), tls_verify, cert_dir,
                    debug=debug, for_push=True)
    repo = ref.path
    progress.say("The push refers to repository [%s]" % ref.repository)
    sources = _mount_sources(record.repo_digests, ref)
    layers = []
    for diff_id in record.layers:
        size = store.layer_meta(diff_id)["tar_size"]
        layers.append(_Layer(diff_id, size))
        short = diff_id[7:19]
        if client.has_blob(repo, diff_id):
            progress.say("%s: Layer already exists" % short)
            continue
        if any(_mount(client, repo, diff_id, src) for src in sources):
            progress.say("%s: Mounted from %s" % (short, sources[0]))
            continue
        with store.open_layer(diff_id) as stream:
            _upload(client, repo, diff_id, size, stream)
        progress.say("%s: Pushed" % short)
    config = store.read_blob(record.id)
    if not client.has_blob(repo, record.id):
        import io
        _upload(client, repo, record.id, len(config), io.BytesIO(config))
    manifest = mf.build_manifest(record.id, len(config), layers, docker=True)
    digest = mf.sha256(manifest)
    resp = client.request("PUT", "%s/manifests/%s" % (repo, ref.tag), "repository:%s:pull,push" % repo,
                          {"Content-Type": mf.DOCKER_MANIFEST}, data=manifest, ok=(201, 200))
    said = resp.headers.get("docker-content-digest")
    if said and said != digest:
        raise DigestMismatch("the registry stored the manifest as %s, not %s" % (said, digest))
    store.put_blob_bytes(manifest, digest)
    record.repo_digests = sorted(set(record.repo_digests) | {"%s@%s" % (ref.repository, digest)})
    store.add_image(record)
    progress.say("%s: digest: %s size: %d" % (ref.tag, digest, len(manifest)))
    return digest


def _mount_sources(repo_digests: List[str], ref) -> List[str]:
    """Other repositories of the same registry that hold this image's blobs."""
    out = []
    for rd in repo_digests:
        name = rd.split("@")[0]
        try:
            other = reference.parse(name, default_tag=False)
        except Exception:
            continue
        if other.domain == ref.domain and other.path != ref.path:
            out.append(other.path)
    return out


def _mount(client, repo: str, digest: str, source: str) -> bool:
    query = urllib.parse.urlencode({"mount": digest, "from": source})
    resp = client.request("POST", "%s/blobs/uploads/?%s" % (repo, query),
                          "repository:%s:pull,push repository:%s:pull" % (repo, source), data=b"", ok=(201, 202))
    if resp.status == 201:
        return True
    location = resp.headers.get("location")
    if location:  # the registry started an upload instead: cancel it
        try:
            client.request("DELETE", _absolute(client, location), "repository:%s:pull,push" % repo, ok=(204, 200, 404))
        except Exception:
            pass
    return False


def _upload(client, repo: str, digest: str, size: int, stream) -> None:
    scope = "repository:%s:pull,push" % repo
    resp = client.request("POST", "%s/blobs/uploads/" % repo, scope, data=b"", ok=(202,))
    location = _absolute(client, resp.headers["location"])
    if size <= CHUNK:
        data = stream.read(size + 1)
        if len(data) != size:
            raise InvalidImage("blob %s is %d bytes, not %d" % (digest, len(data), size))
        client.request("PUT", _with_digest(location, digest), scope,
                       {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                       data=data, ok=(201,))
        return
    sent = 0
    while sent < size:
        data = stream.read(min(CHUNK, size - sent))
        if not data:
            raise InvalidImage("blob %s ended after %d of %d bytes" % (digest, sent, size))
        resp = client.request("PATCH", location, scope,
                              {"Content-Type": "application/octet-stream", "Content-Length": str(len(data)),
                               "Content-Range": "%d-%d" % (sent, sent + len(data) - 1)},
                              data=data, ok=(202,))
        location = _absolute(client, resp.headers.get("location", location))
        sent += len(data)
    client.request("PUT", _with_digest(location, digest), scope, {"Content-Length": "0"}, data=b"", ok=(201,))


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})


def _absolute(client, location: str) -> str:
    if location.startswith(("http://", "https://")):
        return location
    base = client.endpoints[client._good or 0][0]
    return urllib.parse.urljoin(base + "/", location)
