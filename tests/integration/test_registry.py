"""pull, push, login, run --pull against real local registries (Debian's docker-registry),
in the four set-ups of tests/registries.py: plain HTTP, TLS with a test CA, htpasswd basic
auth, and token auth with a token server of the test suite. Interop is checked with
skopeo and podman. Run as the unprivileged test user."""

import hashlib
import json
import os
import subprocess
import time

import pytest

from conftest import have, need
from proxies import RecordingProxy, ThrottlingProxy, set_proxy_env
from registries import make_registry, registry  # noqa: F401  (pytest fixtures)

DEBIAN = "debian-docker.tar"


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    """A private $XDG_CONFIG_HOME (registries.json, auth.json) for the rootless commands."""
    home = tmp_path / "config"
    (home / "rootless").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home / "rootless"


def trust(reg, config_home):
    """What a user does for each set-up: list a plain-HTTP registry as insecure, put a
    private CA in certs.d, log in where the registry wants credentials."""
    if reg.kind == "http":
        (config_home / "registries.json").write_text(json.dumps({"insecure-registries": [reg.host]}))
    else:
        certs = config_home / "certs.d" / reg.host
        certs.mkdir(parents=True)
        (certs / "ca.crt").write_bytes(open(reg.ca_file, "rb").read())


def login(rl, reg):
    proc = rl("login", "-u", reg.username, "--password-stdin", reg.host, input=reg.password.encode())
    assert b"Login Succeeded" in proc.stdout
    assert reg.password.encode() not in proc.stdout + proc.stderr


def test_pull_then_run_in_every_setup(rl, registry, config_home, test_images, unprivileged):
    digest = registry.push_archive(os.path.join(test_images, DEBIAN), "debian:latest")
    trust(registry, config_home)
    if registry.username:
        denied = rl("pull", registry.host + "/debian", check=False)
        assert denied.returncode == 125 and b"unauthorized" in denied.stderr
        assert rl.out("images", "-q") == ""
        login(rl, registry)
        auth = json.loads((config_home / "auth.json").read_text())
        assert registry.host in auth["auths"]
        assert os.stat(config_home / "auth.json").st_mode & 0o777 == 0o600
    out = rl.out("pull", registry.host + "/debian")
    assert "Digest: " + digest in out and out.strip().endswith(registry.host + "/debian:latest")
    info = json.loads(rl.out("image", "inspect", registry.host + "/debian"))[0]
    assert info["RepoDigests"] == ["%s/debian@%s" % (registry.host, digest)]
    assert rl.out("run", "--rm", registry.host + "/debian", "cat", "/etc/debian_version").strip()
    again = rl.out("pull", registry.host + "/debian")
    assert "Already exists" in again and "Image is up to date" in again


def test_run_pulls_what_is_missing(rl, make_registry, config_home, test_images, unprivileged):
    reg = make_registry("http")
    reg.push_archive(os.path.join(test_images, "busybox-docker.tar"), "busybox:latest")
    trust(reg, config_home)
    never = rl("run", "--rm", "--pull=never", reg.host + "/busybox", "true", check=False)
    assert never.returncode == 125 and rl.out("images", "-q") == ""
    proc = rl("run", "--rm", reg.host + "/busybox", "echo", "pulled")
    assert proc.stdout == b"pulled\n" and b"Pull complete" in proc.stderr
    proc = rl("run", "--rm", "--pull=always", reg.host + "/busybox", "true")
    assert b"Already exists" in proc.stderr


@pytest.mark.parametrize("inflater", ["process", "thread"])
def test_tampered_blob_is_refused_and_nothing_listed(rl, make_registry, config_home, test_images, unprivileged,
                                                     inflater, monkeypatch):
    """The unpack follows the layer as it inflates, so it meets the damage first; the
    error the user sees is still the digest's, whichever inflater ran."""
    monkeypatch.setenv("ROOTLESS_INFLATE", inflater)
    reg = make_registry("http")
    reg.push_archive(os.path.join(test_images, "busybox-docker.tar"), "busybox:latest")
    trust(reg, config_home)
    status, _, body = reg.get("/v2/busybox/manifests/latest",
                              headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert status == 200
    manifest = json.loads(body)
    manifest["layers"].sort(key=lambda l: -l["size"])
    blob = reg.blob_path(manifest["layers"][0]["digest"])
    data = bytearray(open(blob, "rb").read())
    data[len(data) // 2] ^= 0xFF
    os.chmod(blob, 0o644)
    with open(blob, "wb") as f:
        f.write(data)
    proc = rl("pull", reg.host + "/busybox", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and "wrong content" in err and err.count("\n") == 1
    assert rl.out("images", "-a", "-q") == ""


def test_both_inflaters_store_the_same_image(rl, make_registry, config_home, test_images, unprivileged,
                                             tmp_path, monkeypatch):
    """A pull inflates a big gzip layer in a child process and unpacks it as it grows;
    with ROOTLESS_INFLATE=thread it does both in-process. Both stores must end up with
    the same image, down to the bytes `save` rebuilds from the unpacked files."""
    from conftest import Rootless
    reg = make_registry("http")
    reg.push_archive(os.path.join(test_images, DEBIAN), "debian:latest")
    trust(reg, config_home)
    saved = {}
    for inflater in ("process", "thread"):
        monkeypatch.setenv("ROOTLESS_INFLATE", inflater)
        store = Rootless(str(tmp_path / ("root-" + inflater)))
        proc = store("--debug", "pull", reg.host + "/debian")
        assert ("inflating in a thread" in proc.stderr.decode()) == (inflater == "thread")
        assert store.out("run", "--rm", reg.host + "/debian", "cat", "/etc/debian_version").strip()
        out = tmp_path / ("saved-" + inflater + ".tar")
        store("save", "-o", str(out), reg.host + "/debian")
        saved[inflater] = (json.loads(store.out("image", "inspect", reg.host + "/debian"))[0]["RootFS"],
                           hashlib.sha256(out.read_bytes()).hexdigest())
        assert os.listdir(os.path.join(store.root, "downloads")) == []  # nothing left behind
    assert saved["process"] == saved["thread"]


def test_two_pulls_of_one_image_at_once(rl, make_registry, config_home, test_images, unprivileged):
    """Two pulls into one store share its locks: one downloads and unpacks each layer, the
    other waits and finds it; both succeed and nothing is left in downloads/."""
    reg = make_registry("http")
    reg.push_archive(os.path.join(test_images, DEBIAN), "debian:latest")
    trust(reg, config_home)
    procs = [rl.popen("pull", "-q", reg.host + "/debian", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.decode().strip() == reg.host + "/debian:latest"
    assert len(rl.out("images", "-q").split()) == 1
    assert os.listdir(os.path.join(rl.root, "downloads")) == []
    assert rl.out("run", "--rm", reg.host + "/debian", "cat", "/etc/debian_version").strip()


def test_errors_say_what_happened(rl, make_registry, config_home, test_images, unprivileged):
    reg = make_registry("tls")
    reg.push_archive(os.path.join(test_images, "busybox-docker.tar"), "busybox:latest")
    untrusted = rl("pull", reg.host + "/busybox", check=False)
    assert untrusted.returncode == 125 and b"could not be verified" in untrusted.stderr
    trust(reg, config_home)
    missing_tag = rl("pull", reg.host + "/busybox:nope", check=False)
    assert missing_tag.returncode == 125 and b"manifest unknown" in missing_tag.stderr
    wrong_platform = rl("pull", "--platform", "linux/s390x", reg.host + "/busybox", check=False)
    assert wrong_platform.returncode == 125 and b"s390x" in wrong_platform.stderr
    dns = without_network(rl, "pull", "no-such-host.invalid/busybox")
    assert dns.returncode == 125 and dns.stderr.count(b"\n") == 1
    assert b"cannot resolve the registry host no-such-host.invalid" in dns.stderr
    assert rl.out("images", "-q") == ""


def without_network(rl, *args):
    """``rootless ARGS`` in a network namespace of its own (no interface up, not even
    loopback): a name lookup cannot reach any DNS server, so nothing leaves the machine
    and the client must say so clearly without a server's answer."""
    need(have("unshare"), "unshare (util-linux)")
    probe = subprocess.run(["unshare", "--map-current-user", "--net", "true"], capture_output=True)
    need(probe.returncode == 0, "unshare --map-current-user --net: %s" % probe.stderr.decode().strip())
    return subprocess.run(["unshare", "--map-current-user", "--net", "--"] + rl.base + list(args),
                          capture_output=True, env=rl.env(), timeout=120)


@pytest.mark.needs_subuid  # podman needs sub-ids; the pushes do not, but run here with it
def test_push_then_skopeo_and_podman_see_the_same_digest(rl, make_registry, config_home, test_images,
                                                         unprivileged, podman):
    reg = make_registry("basic")
    trust(reg, config_home)
    login(rl, reg)
    rl("load", "-i", os.path.join(test_images, DEBIAN))
    rl("tag", "debian", reg.host + "/mine/debian:v1")
    out = rl.out("push", reg.host + "/mine/debian:v1")
    digest = out.strip().split("digest: ")[1].split()[0]
    info = json.loads(rl.out("image", "inspect", reg.host + "/mine/debian:v1"))[0]
    assert "%s/mine/debian@%s" % (reg.host, digest) in info["RepoDigests"]
    need(have("skopeo"), "skopeo")
    inspected = subprocess.run(["skopeo", "inspect", "--cert-dir", os.path.dirname(reg.ca_file),
                                "--creds", "%s:%s" % (reg.username, reg.password),
                                "docker://%s/mine/debian:v1" % reg.host], capture_output=True, check=True)
    assert json.loads(inspected.stdout)["Digest"] == digest
    # podman pulls what rootless pushed, and gets the same image ID
    pod_cfg = os.path.dirname(reg.ca_file)
    podman("pull", "--cert-dir", pod_cfg, "--creds", "%s:%s" % (reg.username, reg.password),
           "%s/mine/debian:v1" % reg.host)
    assert podman("images", "-q", "--no-trunc").split()[0] == info["Id"]
    # A second push sends nothing new; a push to another repository mounts the blobs.
    again = rl.out("push", reg.host + "/mine/debian:v1")
    assert again.count("Layer already exists") == 2
    rl("tag", "debian", reg.host + "/other/debian:v1")
    mounted = rl.out("push", reg.host + "/other/debian:v1")
    assert mounted.count("Mounted from mine/debian") == 2


def size_or_zero(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def test_interrupted_pull_resumes_without_fetching_finished_layers(rl, make_registry, config_home, test_images,
                                                                   unprivileged):
    reg = make_registry("http")
    reg.push_archive(os.path.join(test_images, DEBIAN), "debian:latest")
    proxy = ThrottlingProxy(reg.port, rate=8 << 20)
    host = "127.0.0.1:%d" % proxy.port
    (config_home / "registries.json").write_text(json.dumps({"insecure-registries": [host], "retries": 1}))
    try:
        proc = rl.popen("pull", host + "/debian", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        downloads = os.path.join(rl.root, "downloads")
        deadline = time.monotonic() + 60
        growing = None  # the big layer's partial download, once past 4 MiB
        while growing is None:
            assert time.monotonic() < deadline, "the pull never got half-way through a layer"
            # <hex>.partial is the blob as received, <hex>.tar.partial its decompressed copy;
            # a finished download is <hex> (and <hex>.tar), or already a layer. Files come
            # and go (renamed, unpacked) while we look, so a vanished one counts as absent.
            names = os.listdir(downloads) if os.path.isdir(downloads) else []
            finished = [f for f in names if len(f) == 64]
            layers = os.listdir(os.path.join(rl.root, "layers")) if os.path.isdir(os.path.join(rl.root, "layers")) else []
            big_ones = [f for f in names if f.endswith(".partial") and not f.endswith(".tar.partial")
                        and size_or_zero(os.path.join(downloads, f)) > (4 << 20)]
            if big_ones and (finished or layers):
                growing = big_ones[0]
            else:
                time.sleep(0.02)
        reg.stop()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 125, err
        assert rl.out("images", "-q") == ""
        kept = os.path.getsize(os.path.join(downloads, growing))
        big = growing[:-len(".partial")]
        reg.start()
        proxy.requests.clear()
        out = rl.out("pull", host + "/debian")
        # The small layer finished before the stop: unpacked then ("Already exists") or
        # kept in downloads/ ("Already downloaded"); either way it is not asked for again.
        assert "Already exists" in out or "Already downloaded" in out
        status, _, body = reg.get("/v2/debian/manifests/latest",
                                  headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        small = [l["digest"] for l in json.loads(body)["layers"] if l["digest"] != "sha256:" + big]
        assert status == 200 and len(small) == 1
        assert not [r for r in proxy.requests if small[0] in r], proxy.requests
        assert "GET /v2/debian/blobs/sha256:" + big in proxy.requests
        assert "Resuming download at %d bytes" % kept in out
        assert "Range: bytes=%d-" % kept in proxy.requests
        assert rl.out("run", "--rm", host + "/debian", "true") == ""
        assert os.listdir(downloads) == []
    finally:
        proxy.close()


def test_docker_hub_names_go_to_the_configured_mirror(rl, make_registry, config_home, test_images, image_ids,
                                                      unprivileged, monkeypatch):
    """`pull busybox` means docker.io/library/busybox; with a mirror configured the mirror
    serves it. A pull that skipped the mirror would go to registry-1.docker.io: the proxy
    variables point at a local proxy that refuses any host off this machine and records it,
    so such a pull fails here, and never leaves the machine."""
    mirror = make_registry("http", access_log=True)
    mirror.push_archive(os.path.join(test_images, "busybox-docker.tar"), "library/busybox:latest")
    (config_home / "registries.json").write_text(json.dumps({"registry-mirrors": [mirror.url]}))
    with RecordingProxy() as guard:
        set_proxy_env(monkeypatch, http=guard.url, https=guard.url, no_proxy="127.0.0.1")
        out = rl.out("pull", "busybox")
    assert guard.requests == []
    assert out.strip().endswith("docker.io/library/busybox:latest")
    image = json.loads(rl.out("image", "inspect", "busybox"))[0]
    assert image["Id"] == image_ids["busybox-docker.tar"]
    manifest = json.loads(mirror.get("/v2/library/busybox/manifests/latest",
                                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})[2])
    wanted = ["/v2/library/busybox/manifests/latest"] + [
        "/v2/library/busybox/blobs/" + d["digest"] for d in [manifest["config"]] + manifest["layers"]]
    mirror.wait_served(lambda served: set(wanted) <= {path for method, path, status, agent in served
                                                      if method == "GET" and status == 200
                                                      and agent.startswith("rootless/")},
                       "rootless's GETs of the manifest and every blob")
    assert rl.out("run", "--rm", "busybox", "echo", "ok") == "ok\n"


def test_search_lists_matching_repositories_of_a_registry(rl, make_registry, config_home, test_images,
                                                          unprivileged):
    reg = make_registry("http")
    reg.push_archive(os.path.join(test_images, "busybox-docker.tar"), "tools/busybox:latest")
    reg.push_archive(os.path.join(test_images, "busybox-docker.tar"), "other/thing:latest")
    trust(reg, config_home)
    out = rl.out("search", reg.host + "/busy")
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["NAME", "DESCRIPTION"]
    assert [l.split()[0] for l in lines[1:]] == [reg.host + "/tools/busybox"]


def test_progress_on_a_terminal_rewrites_each_layer_line(rl, make_registry, config_home, test_images, unprivileged):
    import shlex
    need(have("script"), "script (util-linux) to give the pull a terminal")
    reg = make_registry("http")
    reg.push_archive(os.path.join(test_images, DEBIAN), "debian:latest")
    trust(reg, config_home)
    cmd = " ".join(shlex.quote(a) for a in rl.base + ["pull", reg.host + "/debian"])
    proc = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, env=rl.env(), timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert b"\x1b[" in proc.stdout and b"Downloading [" in proc.stdout and b"Pull complete" in proc.stdout
    plain = rl.out("pull", reg.host + "/debian")  # not a terminal: plain lines only
    assert "\x1b[" not in plain and "Already exists" in plain
