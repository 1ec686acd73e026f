"""What the README's "Registries" section promises, end to end against real local
registries (tests/registries.py), with the built zipapp: pulls by digest, the platform
chosen from a multi-platform index, --cert-dir and --tls-verify=false on pull and push,
Docker's config.json credentials, a manifest tampered with in the registry's storage, and
proxies from the environment."""

import base64
import hashlib
import json
import os
import urllib.request

import pytest

from conftest import need
from proxies import RecordingProxy, set_proxy_env
from registries import MANIFEST_V2, make_registry  # noqa: F401  (pytest fixture)

BUSYBOX = "busybox-docker.tar"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
# os.uname().machine -> the architecture images name (the Go names), for this machine's platform
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


@pytest.fixture
def user_config(tmp_path, monkeypatch):
    """A private HOME (its ~/.docker empty) and XDG_CONFIG_HOME; returns $XDG_CONFIG_HOME/rootless."""
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    set_proxy_env(monkeypatch)  # no proxy unless a test sets one
    (tmp_path / "config" / "rootless").mkdir(parents=True)
    return tmp_path / "config" / "rootless"


def trust(reg, user_config):
    if reg.ca_file:
        certs = user_config / "certs.d" / reg.host
        certs.mkdir(parents=True)
        (certs / "ca.crt").write_bytes(open(reg.ca_file, "rb").read())
    else:
        (user_config / "registries.json").write_text(json.dumps({"insecure-registries": [reg.host]}))


def inspect(rl, name):
    return json.loads(rl.out("image", "inspect", name))[0]


def one_line_125(proc):
    err = proc.stderr.decode()
    assert proc.returncode == 125 and err.startswith("rootless: error: ") and err.count("\n") == 1, err
    return err


def nothing_stored(rl):
    assert rl.out("images", "-a", "-q") == ""
    for sub in ("layers", "downloads"):
        path = os.path.join(rl.root, sub)
        assert not os.path.isdir(path) or os.listdir(path) == [], (sub, os.listdir(path))


# -- the registry API, for content rootless did not push (urllib, as tests/registries.py) --

def send(reg, method, path, data=b"", headers=None):
    req = urllib.request.Request(reg.url + path if path.startswith("/") else path, data=data, method=method,
                                 headers=dict(headers or {}))
    ctx = reg.ssl_context() if reg.tls else None
    with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
        return resp.status, resp.headers


def put_blob(reg, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers = send(reg, "POST", "/v2/%s/blobs/uploads/" % repo)
    assert status == 202
    location = headers["Location"]
    if location.startswith("/"):
        location = reg.url + location
    status, _ = send(reg, "PUT", location + ("&" if "?" in location else "?") + "digest=" + digest, data,
                     {"Content-Type": "application/octet-stream"})
    assert status == 201
    return digest


def put_manifest(reg, repo, ref, data, media_type):
    status, headers = send(reg, "PUT", "/v2/%s/manifests/%s" % (repo, ref), data, {"Content-Type": media_type})
    assert status == 201
    return headers["Docker-Content-Digest"]


def get_manifest(reg, repo, ref, accept):
    status, headers, body = reg.get("/v2/%s/manifests/%s" % (repo, ref), {"Accept": accept})
    assert status == 200, body
    return body, headers["Docker-Content-Digest"]


# -- pull by digest -------------------------------------------------------------------------

def test_pull_by_digest(rl, make_registry, user_config, test_images, image_ids, unprivileged):
    reg = make_registry("http")
    digest = reg.push_archive(os.path.join(test_images, BUSYBOX), "busybox:latest")
    trust(reg, user_config)
    name = "%s/busybox@%s" % (reg.host, digest)
    out = rl.out("pull", name)
    assert "Digest: " + digest in out and out.strip().endswith(name)
    image = inspect(rl, name)
    assert image["Id"] == image_ids[BUSYBOX]
    assert image["RepoDigests"] == [name]
    assert image["RepoTags"] == []  # a digest names no tag
    assert rl.out("run", "--rm", name, "echo", "by digest") == "by digest\n"
    # a digest the registry does not have is refused, whatever the tag points at
    other = "sha256:" + "0" * 64
    err = one_line_125(rl("pull", "%s/busybox@%s" % (reg.host, other), check=False))
    assert "manifest unknown" in err


# -- the platform, from a multi-platform index ------------------------------------------------

@pytest.mark.parametrize("kind", ["docker", "oci"])
def test_platform_is_chosen_from_an_index(rl, make_registry, user_config, test_images, image_ids, unprivileged,
                                          kind):
    """An index with this machine's platform (the busybox image as built) and another one
    (the same layer under a config that says so): the default pull takes this machine's,
    --platform the other, each verified down to its config."""
    here = GO_ARCH.get(os.uname().machine)
    need(here is not None, "a platform name for machine %s" % os.uname().machine)
    other, variant = ("arm64", "v8") if here != "arm64" else ("amd64", None)
    reg = make_registry("http")
    archive = BUSYBOX if kind == "docker" else "busybox-oci.tar"
    reg.push_archive(os.path.join(test_images, archive), "busybox:single")
    manifest_type = MANIFEST_V2 if kind == "docker" else OCI_MANIFEST
    index_type = DOCKER_LIST if kind == "docker" else OCI_INDEX
    native, native_digest = get_manifest(reg, "busybox", "single", manifest_type)
    manifest = json.loads(native)
    assert manifest["config"]["digest"] == image_ids[archive]
    status, _, config_bytes = reg.get("/v2/busybox/blobs/" + manifest["config"]["digest"])
    config = json.loads(config_bytes)
    assert status == 200 and config["architecture"] == here
    config["architecture"] = other
    if variant:
        config["variant"] = variant
    foreign_config = json.dumps(config).encode()
    manifest["config"] = dict(manifest["config"], digest=put_blob(reg, "busybox", foreign_config),
                              size=len(foreign_config))
    foreign = json.dumps(manifest).encode()
    foreign_digest = put_manifest(reg, "busybox", "foreign", foreign, manifest_type)
    foreign_platform = {"architecture": other, "os": "linux"}
    if variant:
        foreign_platform["variant"] = variant
    index = {"schemaVersion": 2, "mediaType": index_type, "manifests": [
        {"mediaType": manifest_type, "digest": foreign_digest, "size": len(foreign), "platform": foreign_platform},
        {"mediaType": manifest_type, "digest": native_digest, "size": len(native),
         "platform": {"architecture": here, "os": "linux"}},
    ]}
    index_digest = put_manifest(reg, "busybox", "multi", json.dumps(index).encode(), index_type)
    trust(reg, user_config)
    name = reg.host + "/busybox:multi"

    rl("pull", name)
    image = inspect(rl, name)
    assert image["Id"] == image_ids[archive] and image["Architecture"] == here
    assert image["RepoDigests"] == ["%s/busybox@%s" % (reg.host, index_digest)]
    assert rl.out("run", "--rm", name, "echo", "native") == "native\n"

    rl("pull", "--platform", "linux/" + other, name)
    image = inspect(rl, name)
    assert image["Id"] == "sha256:" + hashlib.sha256(foreign_config).hexdigest()
    assert image["Architecture"] == other and image["Os"] == "linux"
    assert image["Id"] != image_ids[archive]

    err = one_line_125(rl("pull", "--platform", "linux/s390x" if here != "s390x" else "linux/riscv64", name,
                          check=False))
    assert "linux/" + other in err and "linux/" + here in err  # what the index has


# -- --cert-dir and --tls-verify=false --------------------------------------------------------

def test_cert_dir_and_tls_verify_false_on_pull_and_push(rl, make_registry, user_config, test_images, image_ids,
                                                        unprivileged):
    """A TLS registry whose CA is trusted nowhere but in the directory given with --cert-dir."""
    reg = make_registry("tls")
    reg.push_archive(os.path.join(test_images, BUSYBOX), "busybox:latest")
    name = reg.host + "/busybox"
    err = one_line_125(rl("pull", name, check=False))
    assert "could not be verified" in err and "--cert-dir" in err
    nothing_stored(rl)
    rl("pull", "--cert-dir", reg.cert_dir, name)
    assert inspect(rl, name)["Id"] == image_ids[BUSYBOX]
    rl("rmi", name)
    rl("pull", "--tls-verify=false", name)
    assert inspect(rl, name)["Id"] == image_ids[BUSYBOX]

    rl("tag", name, reg.host + "/mine/busybox:v1")
    one_line_125(rl("push", reg.host + "/mine/busybox:v1", check=False))
    assert reg.get("/v2/mine/busybox/tags/list")[0] == 404  # nothing reached the registry
    pushed = rl.out("push", "-q", "--cert-dir", reg.cert_dir, reg.host + "/mine/busybox:v1").strip()
    assert get_manifest(reg, "mine/busybox", "v1", MANIFEST_V2)[1] == pushed
    rl("tag", name, reg.host + "/mine/busybox:v2")
    pushed = rl.out("push", "-q", "--tls-verify=false", reg.host + "/mine/busybox:v2").strip()
    body, digest = get_manifest(reg, "mine/busybox", "v2", MANIFEST_V2)
    assert digest == pushed and json.loads(body)["config"]["digest"] == image_ids[BUSYBOX]


# -- Docker's config.json ---------------------------------------------------------------------

def docker_auths(directory, host, user, password):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump({"auths": {host: {"auth": base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}}}, f)


def test_docker_config_credentials_are_used(rl, make_registry, user_config, test_images, image_ids, tmp_path,
                                            monkeypatch, unprivileged):
    reg = make_registry("basic")
    reg.push_archive(os.path.join(test_images, BUSYBOX), "busybox:latest")
    trust(reg, user_config)
    name = reg.host + "/busybox"
    home_docker = os.path.join(os.environ["HOME"], ".docker")
    docker_auths(home_docker, reg.host, reg.username, "wrong")
    err = one_line_125(rl("pull", name, check=False))
    assert "refused access" in err and "wrong" not in err  # the file's credentials were sent
    docker_auths(home_docker, reg.host, reg.username, reg.password)
    rl("pull", name)
    assert inspect(rl, name)["Id"] == image_ids[BUSYBOX]
    assert not (user_config / "auth.json").exists()  # nothing of ours was involved
    rl("rmi", name)
    # DOCKER_CONFIG names the directory instead of ~/.docker
    docker_auths(home_docker, reg.host, reg.username, "wrong")
    elsewhere = str(tmp_path / "docker-config")
    docker_auths(elsewhere, reg.host, reg.username, reg.password)
    monkeypatch.setenv("DOCKER_CONFIG", elsewhere)
    rl("pull", name)
    assert inspect(rl, name)["Id"] == image_ids[BUSYBOX]


# -- a manifest tampered with in the registry -------------------------------------------------

@pytest.mark.parametrize("by", ["tag", "digest"])
def test_tampered_manifest_is_refused_and_nothing_stored(rl, make_registry, user_config, test_images,
                                                         unprivileged, by):
    """distribution keeps a manifest as a blob named by its digest and serves the file as it
    finds it, with that digest in Docker-Content-Digest: the client must check."""
    reg = make_registry("http")
    digest = reg.push_archive(os.path.join(test_images, BUSYBOX), "busybox:latest")
    trust(reg, user_config)
    path = reg.blob_path(digest)
    original = open(path, "rb").read()
    manifest = json.loads(original)
    size = str(manifest["config"]["size"]).encode()
    # still valid JSON of the same length, but no longer the bytes the digest names
    changed = original.replace(b'"size":' + size, b'"size":' + (b"9" * len(size)), 1)
    changed = changed if changed != original else original.replace(b'"size": ' + size,
                                                                    b'"size": ' + b"9" * len(size), 1)
    assert changed != original and json.loads(changed)
    with open(path, "wb") as f:
        f.write(changed)
    served, served_digest = get_manifest(reg, "busybox", "latest", MANIFEST_V2)
    assert served == changed and served_digest == digest  # the registry does not notice
    name = "%s/busybox%s" % (reg.host, ":latest" if by == "tag" else "@" + digest)
    err = one_line_125(rl("pull", name, check=False))
    assert digest in err and "refusing it" in err
    nothing_stored(rl)


# -- proxies from the environment -------------------------------------------------------------

def test_pull_goes_through_the_proxy_of_the_environment(rl, make_registry, user_config, test_images, image_ids,
                                                        monkeypatch, unprivileged):
    plain = make_registry("http")
    secure = make_registry("tls")
    for reg in (plain, secure):
        reg.push_archive(os.path.join(test_images, BUSYBOX), "busybox:latest")
    trust(secure, user_config)
    (user_config / "registries.json").write_text(json.dumps({"insecure-registries": [plain.host]}))
    with RecordingProxy() as proxy:
        set_proxy_env(monkeypatch, http=proxy.url, https=proxy.url)
        # plain HTTP: absolute-form requests to the proxy
        rl("pull", plain.host + "/busybox")
        assert inspect(rl, plain.host + "/busybox")["Id"] == image_ids[BUSYBOX]
        gets = proxy.seen("GET")
        assert "http://%s/v2/busybox/manifests/latest" % plain.host in gets
        assert "http://%s/v2/busybox/blobs/%s" % (plain.host, image_ids[BUSYBOX]) in gets
        # HTTPS: a CONNECT tunnel, inside which TLS is verified with the registry's CA
        del proxy.requests[:]
        rl("pull", secure.host + "/busybox")
        assert inspect(rl, secure.host + "/busybox")["Id"] == image_ids[BUSYBOX]
        assert set(proxy.seen()) == {secure.host} and proxy.seen("CONNECT")
        # NO_PROXY: host, host:port, or a CIDR of addresses, and the proxy sees nothing
        for no_proxy in ("127.0.0.1", "example.invalid," + plain.host, "127.0.0.0/8"):
            del proxy.requests[:]
            set_proxy_env(monkeypatch, http=proxy.url, https=proxy.url, no_proxy=no_proxy)
            rl("rmi", plain.host + "/busybox")
            rl("pull", plain.host + "/busybox")
            assert proxy.requests == [], no_proxy
        assert proxy.refused() == []
