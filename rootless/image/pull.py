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
    job = _Job(store, client, repo, progress, threading.Event())
    # A child to inflate the biggest layer, started now so that its start-up overlaps the
    # manifest requests (see inflate.Spare); closed unused when no layer needs it.
    from rootless.image import inflate
    job.spare = inflate.Spare.start(store.paths.downloads, store.max_layer_size, store.debug)
    try:
        return _pull(job, ref, platform, quiet, stream)
    finally:
        if job.spare is not None:
            job.spare.close()


def _pull(job: "_Job", ref, platform: Optional[str], quiet: bool, stream) -> ImageRecord:
    store, client, repo, progress = job.store, job.client, job.repo, job.progress
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
        infos = _layers(job, layers, diff_ids)
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


class _Job:
    """What every layer of one pull shares: the store, the registry client and repository,
    the progress display, the event that stops the downloads, and the inflating child
    started ahead of need (``spare``; see ``inflate.Spare``)."""

    def __init__(self, store: Store, client, repo: str, progress: Progress, stop: threading.Event):
        self.store, self.client, self.repo, self.progress, self.stop = store, client, repo, progress, stop
        self.spare = None


def _layers(job: _Job, layers: List[dict], diff_ids: List[str]):
    """Every layer in the store; downloads run in threads, unpacking in this one.

    A fresh download hands this thread its (uncompressed) file as soon as the file exists,
    and the unpack follows the download as it grows: inflating the layer (in a child
    process, see ``inflate``) and creating its files (here) then take both cores. A resumed
    download is unpacked once it is complete."""
    import queue
    from rootless import streams
    from rootless.image import inflate
    store, progress, stop = job.store, job.progress, job.stop
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
    sizes = [desc.get("size") or 0 for desc in layers]
    # The biggest downloads start first, and the biggest layer that can be followed is
    # unpacked first: it is the longest job, and a small layer never holds it up.
    pending = sorted(todo, key=lambda i: -sizes[i])
    starting = set()  # taken by a worker, which has not yet said whether it can be followed
    lock = threading.Lock()
    if job.spare is not None and not any(_gzipped(layers[i]) and sizes[i] >= inflate.SMALL for i in todo):
        job.spare.close()  # nothing big to inflate

    def worker():
        while not stop.is_set():
            with lock:
                if not pending:
                    return
                i = pending.pop(0)
                starting.add(i)
            told = []

            def announce(g, i=i):
                """Called once per download: a Growing to follow, or None (a resumed download,
                handed over when complete)."""
                if told:
                    return
                told.append(g)
                with lock:
                    starting.discard(i)
                if g is not None:
                    done.put((i, g, None))
            try:
                result = _download(job, layers[i], announce)
            except BaseException as e:  # handed to the main thread
                announce(None)
                if told[0] is not None:
                    told[0].finish(error=e)
                else:
                    done.put((i, None, e))
            else:
                announce(None)
                if told[0] is not None:
                    try:
                        progress.say("%s: Extracting" % layers[i]["digest"][7:19])  # (it began meanwhile)
                    finally:
                        told[0].finish(result[2])  # whatever happens, the unpack must not wait forever
                else:
                    done.put((i, result, None))
    threads = [threading.Thread(target=worker, daemon=True, name="pull-%d" % n)
               for n in range(min(PARALLEL, len(todo)))]
    for t in threads:
        t.start()
    ready = {}

    def take(timeout=None) -> None:
        i, got, error = done.get(timeout=timeout)
        if error is not None:
            raise error
        ready[i] = got
    try:
        for _ in todo:
            if not ready:
                take()
            while True:
                try:
                    take(0)
                except queue.Empty:
                    break
            deadline = time.monotonic() + 0.5
            while True:
                i = max(ready, key=lambda j: sizes[j])
                with lock:
                    bigger = any(sizes[j] > sizes[i] for j in starting)
                if not bigger or time.monotonic() >= deadline:
                    break
                try:
                    take(max(0.0, deadline - time.monotonic()))  # its response is on its way
                except queue.Empty:
                    break
            got = ready.pop(i)
            desc = layers[i]
            short, what = desc["digest"][7:19], "layer %d/%d (%s)" % (i + 1, len(layers), desc["digest"][7:19])
            gz = _gzipped(desc)
            final = os.path.join(store.paths.downloads, desc["digest"][7:])
            path, plain = (final, final + ".tar") if gz else (final, final)
            # The blob digest was checked by the download; for a gzip layer the unpack reads
            # the copy inflated during the download, and checks the diff_id.
            blob_digest = None if gz else desc["digest"]
            if isinstance(got, streams.Growing):
                try:
                    info = store.ingest_layer(lambda p=plain: open(p, "rb"), blob_digest, diff_ids[i], what,
                                              region=got)
                except Exception:
                    got.result()  # a failed download (a digest error, say) explains a failed unpack
                    raise
                else:
                    # (Also when another pull had the layer already and nothing was read:
                    # the files below get their final names only when the download is done.)
                    got.result()
                finally:
                    got.close()
            else:
                # Another pull into this store may have downloaded these files (we waited for
                # its lock) and be unpacking them; it removes them once the layer is in place.
                info = store.layer_info(diff_ids[i])
                if info is None:
                    try:
                        size = os.path.getsize(plain)
                    except FileNotFoundError:
                        info = store.layer_info(diff_ids[i])
                        if info is None:
                            raise
                    else:
                        progress.say("%s: Extracting" % short)
                        info = store.ingest_layer(lambda p=plain: open(p, "rb"), blob_digest, diff_ids[i], what,
                                                  region=(plain, 0, size))
            for f in {path, plain}:
                try:
                    os.unlink(f)
                except FileNotFoundError:
                    pass  # a concurrent pull of the same layer took it over and removed it
            results[i] = _New(info)
            progress.say("%s: Pull complete" % short)
    finally:
        stop.set()
        for t in threads:
            t.join()
        while not done.empty():  # (after a failure: layers nobody will unpack now)
            item = done.get()
            ready[item[0]] = item[1]
        for got in ready.values():
            if isinstance(got, streams.Growing):
                got.close()
    return results


def _gzipped(desc: dict) -> bool:
    return mf.compression_of(desc.get("mediaType", "")) == "gzip"


class _New:
    """A LayerInfo that this pull unpacked (for the "up to date" message)."""

    new = True

    def __init__(self, info):
        self.__dict__.update(info._asdict())


def _download(job: _Job, desc: dict, announce=None):
    """Fetch one blob into downloads/, resuming a partial file; return (the verified blob,
    its uncompressed tar, the tar's digest or None).

    A gzip blob is inflated as it arrives, by a child process (see ``inflate``), so that
    the unpack can read the tar in place. ``announce`` is called once: for a download
    that starts from nothing, with a ``streams.Growing`` of that tar (the blob itself, when
    it is not compressed) as soon as the file exists, which the caller then finishes;
    otherwise with None."""
    store, progress = job.store, job.progress
    digest = desc["digest"]
    hexd = mf.check_digest(digest, "layer digest")[7:]
    os.makedirs(store.paths.downloads, 0o700, exist_ok=True)
    final = os.path.join(store.paths.downloads, hexd)
    partial, plain = final + ".partial", final + ".tar"
    gz = _gzipped(desc)
    announce = announce or (lambda growing: None)
    with store.lock("download-" + hexd):
        if os.path.exists(final) and (not gz or os.path.exists(plain)):
            announce(None)
            progress.say("%s: Already downloaded" % digest[7:19])  # (by a pull that failed, or one running now)
            return final, plain if gz else final, None
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
        gunzip = None
        if have:
            announce(None)
        if expected is None or have < expected:
            # (A complete partial file, left by a pull that died before the rename, is not
            # asked for again: a range after the end gets a 416.)
            h, gunzip = _fetch(job, desc, partial, h, have, plain + ".partial" if gz and not have else None, announce)
        if "sha256:" + h.hexdigest() != digest:
            os.unlink(partial)
            raise DigestMismatch("layer %s of %s has the wrong content (digest sha256:%s); refusing the image"
                                 % (digest, job.repo, h.hexdigest()))
        if gunzip is not None:
            gunzip.close()  # its errors only now: a damaged blob is reported as a digest error
        if gz and not os.path.exists(plain + ".partial"):
            _gunzip_file(partial, plain + ".partial", store.max_layer_size, store.debug)  # after a resumed download
        if gz:
            os.rename(plain + ".partial", plain)
        os.rename(partial, final)
        progress.say("%s: Download complete" % digest[7:19])
        return final, plain if gz else final, (gunzip.digest if gunzip is not None else digest)


def _fetch(job: _Job, desc: dict, partial: str, h, have: int, plain_path: Optional[str], announce=None):
    """Download the rest of a blob into ``partial`` (hashing it into ``h``, and
    decompressing it into ``plain_path`` when given); the hash of the whole blob and the
    decompressor. With ``announce``, a download from the start hands over a
    ``streams.Growing`` of the file it is making (the tar, or the blob when that is one)."""
    from rootless import streams
    from rootless.image.inflate import open_gunzip
    digest, progress, stop, store = desc["digest"], job.progress, job.stop, job.store
    resp = job.client.blob(job.repo, digest, offset=have)
    gunzip = (open_gunzip(plain_path, store.max_layer_size, store.debug, desc.get("size"), job.spare)
              if plain_path else None)
    try:
        if have and resp.status != 206:
            h, have = hashlib.sha256(), 0  # the registry sent it all again (not followed)
            announce = None
        elif have:
            progress.say("%s: Resuming download at %d bytes" % (digest[7:19], have))
        expected = desc.get("size")
        with open(partial, "ab" if have else "wb") as out:
            follow = None  # the blob itself, followed as it is written here
            if announce is not None and not have:
                growing = streams.Growing(plain_path or partial)
                if gunzip is not None:
                    gunzip.growing = growing  # the tar, followed as the inflater writes it
                else:
                    follow = growing
                announce(growing)
            while not stop.is_set():
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                out.write(chunk)
                if gunzip is not None:
                    gunzip.feed(chunk)
                elif follow is not None:
                    out.flush()
                    follow.grew(len(chunk))
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


def _chunks(path: str):
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                return
            yield chunk


def _gunzip_file(src: str, dest: str, limit, debug=None) -> None:
    from rootless.image.inflate import open_gunzip
    g = open_gunzip(dest, limit, debug)
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

