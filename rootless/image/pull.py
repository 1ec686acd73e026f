"""``pull``: an image from a registry into the store, verified, resumable and parallel.

1. The manifest (or index, then the platform's manifest) is fetched and checked against
   its digest; schema 1 is refused.
2. The config blob is fetched and checked; its diff_ids name the layers.
3. Layers the store lacks are downloaded, ``PARALLEL`` at a time, each streamed to
   ``downloads/<hex>.partial`` while it is hashed. A pull that is interrupted leaves the
   partial file; the next pull asks the registry for the rest (HTTP Range) and hashes
   what it already has first. A finished download is checked against its digest, then
   unpacked by the store (which checks the diff_id too) in the main thread, while other
   layers are still downloading.
4. Only when every layer is in place are the config and manifest stored and the image
   listed (``store.add_image``): a failed pull lists nothing.
"""

import hashlib
import os
import sys
import threading
import time
from typing import Callable, List, Optional

from rootless.errors import DigestMismatch, InvalidImage, NotFound, UsageError
from rootless.image import manifest as mf
from rootless.image import reference
from rootless.image.store import ImageRecord, Store

PARALLEL = 3
CHUNK = 1 << 20


def parse_platform(text: Optional[str]) -> dict:
    if not text:
        return mf.host_platform()
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError("invalid --platform %r: use OS/ARCH[/VARIANT], e.g. linux/arm64" % text)
    plat = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        plat["variant"] = parts[2]
    return plat


class Progress:
    """Docker's pull lines: ``<id>: Pulling fs layer`` ... ``<id>: Pull complete``.

    On a terminal each layer keeps one line, rewritten in place (with a bar while it
    downloads), as Docker shows it; elsewhere every change is a plain line of its own."""

    def __init__(self, quiet: bool, stream=None):
        self.quiet, self.stream = quiet, stream or sys.stdout
        self._lock = threading.Lock()
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self._lines: List[str] = []  # layer ids, in the order their lines were printed
        self._last = {}  # layer id -> time of the last bar drawn

    def say(self, text: str) -> None:
        if self.quiet:
            return
        with self._lock:
            ident, sep, _ = text.partition(": ")
            if self.tty and sep and len(ident) == 12 and ident in self._lines:
                up = len(self._lines) - self._lines.index(ident)
                self.stream.write("\x1b[%dA\r\x1b[2K%s\x1b[%dB\r" % (up, text, up))
            else:
                self.stream.write(text + "\n")
                if self.tty and sep and len(ident) == 12:
                    self._lines.append(ident)
            self.stream.flush()

    def bytes(self, ident: str, have: int, total: Optional[int]) -> None:
        """A download bar, on a terminal only, at most ten times a second per layer."""
        if self.quiet or not self.tty or not total:
            return
        now = time.monotonic()
        if now - self._last.get(ident, 0) < 0.1 and have < total:
            return
        self._last[ident] = now
        done = min(50, have * 50 // total)
        from rootless.streams import human_size
        self.say("%s: Downloading [%s>%s] %s/%s" % (ident, "=" * done, " " * (50 - done),
                                                   human_size(have), human_size(total)))


def pull(store: Store, name: str, platform: Optional[str] = None, tls_verify: Optional[bool] = None,
         cert_dir: Optional[str] = None, quiet: bool = False, debug=None, stream=None) -> ImageRecord:
    from rootless.image.registry import Client
    from rootless.image import regconfig
    ref = reference.parse(name)
    store.ensure()
    progress = Progress(quiet, stream)
    config = regconfig.RegistryConfig.load()
    client = Client(ref.domain, config, tls_verify, cert_dir,
                    credentials=_credentials(ref.domain), debug=debug)
    repo = ref.path
    progress.say("%s: Pulling from %s" % (ref.digest or ref.tag, ref.familiar_repository))
    top, media, top_digest = client.manifest(repo, ref.digest or ref.tag)
    data, digest = top, top_digest
    parsed = mf.load_json(data, "manifest of " + str(ref))
    if mf.is_index(parsed):
        want = parse_platform(platform)
        entries = mf.pick_platform(parsed, want)
        if not entries:
            have = sorted({"/".join(filter(None, [(e.get("platform") or {}).get(k) for k in ("os", "architecture", "variant")]))
                           for e in parsed.get("manifests", [])})
            raise NotFound("%s has no image for platform %s (it has: %s); choose one with --platform"
                           % (ref.familiar(), "/".join(want.values()), ", ".join(have) or "none"))
        data, media, digest = client.manifest(repo, entries[0]["digest"])
    m = mf.parse_manifest(data, "manifest of " + str(ref))
    cfg_desc = m["config"]
    cfg_bytes = client.blob_bytes(repo, cfg_desc["digest"])
    cfg = mf.parse_config(cfg_bytes, "image config of " + str(ref))
    if platform:
        want = parse_platform(platform)
        if cfg.get("architecture") != want["architecture"] or cfg.get("os") != want["os"]:
            raise NotFound("%s is %s/%s, not %s" % (ref.familiar(), cfg.get("os"), cfg.get("architecture"), platform))
    diff_ids = cfg["rootfs"]["diff_ids"]
    layers = m["layers"]
    if len(layers) != len(diff_ids):
        raise InvalidImage("manifest of %s lists %d layers but its config %d" % (ref, len(layers), len(diff_ids)))
    with store.writing():
        infos = _layers(store, client, repo, layers, diff_ids, progress)
        store.put_blob_bytes(cfg_bytes, cfg_desc["digest"])
        manifest_digest = store.put_blob_bytes(data, digest)
        record = ImageRecord(id=cfg_desc["digest"], manifest=manifest_digest, layers=list(diff_ids),
                             repo_digests=["%s@%s" % (ref.repository, top_digest)],
                             created=cfg.get("created") or "", size=sum(i.content_size for i in infos),
                             added=time.time())
        existed = any(img.id == record.id for img in store.images())
        store.add_image(record, [str(ref)] if ref.tag and not ref.digest else [])
    progress.say("Digest: %s" % top_digest)
    progress.say("Status: %s for %s" % ("Image is up to date" if existed and not infos_new(infos)
                                         else "Downloaded newer image", ref.familiar()))
    if not quiet:
        progress.say(str(ref))
    elif stream is None:
        sys.stdout.write(str(ref) + "\n")
    return record


def infos_new(infos) -> bool:
    return any(getattr(i, "new", False) for i in infos)


def _credentials(domain: str):
    from rootless.image import auth
    return auth.get_credentials(domain)


def _layers(store: Store, client, repo: str, layers: List[dict], diff_ids: List[str], progress: Progress):
    """Every layer in the store; downloads run in threads, unpacking in this one."""
    import queue
    results = [None] * len(layers)
    todo = []
    for i, (desc, diff_id) in enumerate(zip(layers, diff_ids)):
        info = store.layer_info(diff_id)
        if info:
            progress.say("%s: Already exists" % desc["digest"][7:19])
            results[i] = info
        else:
            progress.say("%s: Pulling fs layer" % desc["digest"][7:19])
            todo.append(i)
    done: "queue.Queue" = queue.Queue()
    pending = list(todo)
    lock = threading.Lock()
    stop = threading.Event()

    def worker():
        while not stop.is_set():
            with lock:
                if not pending:
                    return
                i = pending.pop(0)
            try:
                done.put((i, _download(store, client, repo, layers[i], progress, stop), None))
            except BaseException as e:  # handed to the main thread
                done.put((i, None, e))
    threads = [threading.Thread(target=worker, daemon=True, name="pull-%d" % n)
               for n in range(min(PARALLEL, len(todo)))]
    for t in threads:
        t.start()
    try:
        for _ in todo:
            i, path, error = done.get()
            if error is not None:
                raise error
            desc = layers[i]
            progress.say("%s: Extracting" % desc["digest"][7:19])
            path, plain = path
            # A plain tar is read in place (see Store._unpack_region). For a gzip layer that
            # is the copy decompressed during the download, which checked the blob digest;
            # the unpack checks the diff_id.
            info = store.ingest_layer(lambda p=path: open(p, "rb"), None if plain != path else desc["digest"],
                                      diff_ids[i], "layer %d/%d (%s)" % (i + 1, len(layers), desc["digest"][7:19]),
                                      region=(plain, 0, os.path.getsize(plain)))
            for f in {path, plain}:
                os.unlink(f)
            results[i] = _New(info)
            progress.say("%s: Pull complete" % desc["digest"][7:19])
    finally:
        stop.set()
        for t in threads:
            t.join()
    return results


class _New:
    """A LayerInfo that this pull unpacked (for the "up to date" message)."""

    new = True

    def __init__(self, info):
        self.__dict__.update(info._asdict())


def _download(store: Store, client, repo: str, desc: dict, progress: Progress, stop):
    """Fetch one blob into downloads/, resuming a partial file; return (the verified blob,
    its uncompressed tar). A gzip blob is decompressed as it arrives, in a thread of its
    own (zlib releases the GIL), so that the unpack can read the tar in place."""
    digest = desc["digest"]
    hexd = mf.check_digest(digest, "layer digest")[7:]
    os.makedirs(store.paths.downloads, 0o700, exist_ok=True)
    final = os.path.join(store.paths.downloads, hexd)
    partial, plain = final + ".partial", final + ".tar"
    gz = mf.compression_of(desc.get("mediaType", "")) == "gzip"
    with store.lock("download-" + hexd):
        if os.path.exists(final) and (not gz or os.path.exists(plain)):
            return final, plain if gz else final
        h = hashlib.sha256()
        have = 0
        if os.path.exists(partial):
            for chunk in _chunks(partial):
                h.update(chunk)
                have += len(chunk)
        expected = desc.get("size")
        if expected is not None and have >= expected and "sha256:" + h.hexdigest() != digest:
            h, have = hashlib.sha256(), 0
        if have and os.path.exists(plain + ".partial"):
            os.unlink(plain + ".partial")  # decompressed from the start again once complete
        if expected is None or have < expected:
            # (A complete partial file, left by a pull that died before the rename, is not
            # asked for again: a range after the end gets a 416.)
            h, gunzip = _fetch(client, repo, digest, desc, partial, h, have, progress, stop, store.max_layer_size,
                               plain + ".partial" if gz and not have else None)
        else:
            gunzip = None
        if "sha256:" + h.hexdigest() != digest:
            os.unlink(partial)
            raise DigestMismatch("layer %s of %s has the wrong content (digest sha256:%s); refusing the image"
                                 % (digest, repo, h.hexdigest()))
        if gunzip is not None:
            gunzip.close()  # its errors only now: a damaged blob is reported as a digest error
        if gz and not os.path.exists(plain + ".partial"):
            _gunzip_file(partial, plain + ".partial", store.max_layer_size)  # after a resumed download
        if gz:
            os.rename(plain + ".partial", plain)
        os.rename(partial, final)
        progress.say("%s: Download complete" % digest[7:19])
        return final, plain if gz else final


def _fetch(client, repo, digest, desc, partial, h, have, progress, stop, limit, plain_path):
    """Download the rest of a blob into ``partial`` (hashing it into ``h``, and
    decompressing it into ``plain_path`` when given); the hash of the whole blob."""
    resp = client.blob(repo, digest, offset=have)
    gunzip = _Gunzip(plain_path, limit) if plain_path else None
    try:
        if have and resp.status != 206:
            h, have = hashlib.sha256(), 0  # the registry sent it all again
        elif have:
            progress.say("%s: Resuming download at %d bytes" % (digest[7:19], have))
        expected = desc.get("size")
        with open(partial, "ab" if have else "wb") as out:
            while not stop.is_set():
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                out.write(chunk)
                if gunzip is not None:
                    gunzip.feed(chunk)
                have += len(chunk)
                progress.bytes(digest[7:19], have, expected)
                if expected is not None and have > expected:
                    raise DigestMismatch("layer %s is larger than its manifest says (%d bytes)" % (digest, expected))
    finally:
        resp.close()
        if gunzip is not None:
            gunzip.abort()
    if stop.is_set():
        raise InvalidImage("pull interrupted")
    return h, gunzip


class _Gunzip:
    """Decompress a (possibly multi-member) gzip stream into a file, bounded by ``limit``.

    ``feed`` hands the data to a thread of its own, so that receiving and hashing (the
    download thread) and inflating (this one) use two cores; the queue is short and each
    inflate call yields at most 4 MiB, so memory stays bounded."""

    def __init__(self, path: str, limit):
        import queue
        import zlib
        self._zlib = zlib
        self.out = open(path, "wb")
        self.limit, self.size = limit, 0
        self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._error: Optional[BaseException] = None
        self._queue: "queue.Queue" = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="gunzip", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            if self._error is None:
                try:
                    self._inflate(data)
                except BaseException as e:  # re-raised in the download thread
                    self._error = e

    def feed(self, data: bytes) -> None:
        """Queue data; errors (bad gzip, too large) are kept for ``close``."""
        if self._error is None:
            self._queue.put(data)

    def _inflate(self, data: bytes) -> None:
        while data:
            try:
                chunk = self.d.decompress(data, 4 << 20)
            except self._zlib.error as e:
                raise InvalidImage("layer is not valid gzip data (%s)" % e)
            self.size += len(chunk)
            if self.limit is not None and self.size > self.limit:
                from rootless.errors import SizeLimitExceeded
                raise SizeLimitExceeded("a layer unpacks to more than the --max-layer-size limit; refusing it "
                                        "(a decompression bomb guard)")
            self.out.write(chunk)
            data = self.d.unconsumed_tail
            if self.d.eof:
                data = self.d.unused_data
                if data:
                    self.d = self._zlib.decompressobj(16 + self._zlib.MAX_WBITS)

    def _join(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def close(self) -> None:
        self._join()
        if not self.out.closed:
            self.out.close()
        if self._error is not None:
            raise self._error
        if not self.d.eof:
            raise InvalidImage("layer gzip data is truncated")

    def abort(self) -> None:
        """Stop the thread (after the data queued so far) and close the file."""
        self._join()
        if not self.out.closed:
            self.out.close()


def _chunks(path: str):
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                return
            yield chunk


def _gunzip_file(src: str, dest: str, limit) -> None:
    g = _Gunzip(dest, limit)
    try:
        for chunk in _chunks(src):
            g.feed(chunk)
        g.close()
    finally:
        g.abort()


def ensure_image(store: Store, name: str, policy: str, pull_fn: Optional[Callable] = None) -> None:
    """``--pull=missing|always|never`` for run and create."""
    if policy not in ("missing", "always", "never"):
        raise UsageError("invalid --pull %r: use missing, always or never" % policy)
    if policy == "never":
        return
    if policy == "missing":
        try:
            store.lookup(name)
            return
        except NotFound:
            pass
    (pull_fn or (lambda n: pull(store, n, stream=sys.stderr)))(name)

