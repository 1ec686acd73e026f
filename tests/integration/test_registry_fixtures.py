"""The local registries of tests/registries.py work: each kind starts, answers /v2/ with the
right status or challenge, accepts a skopeo push, serves it back (also byte ranges), and keeps
it across a restart.  Only urllib, ssl and skopeo here, never rootless's own client."""

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import need
from registries import (MANIFEST_V2, TOKEN_ISSUER, TOKEN_SERVICE, b64url_decode, libtrust_key_id,
                        rs256_sign)
from registries import make_registry, registry  # noqa: F401  (pytest fixtures)


def fetch(url, headers=None, context=None, method="GET", timeout=10):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, context=context, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def parse_challenge(value):
    scheme, _, params = value.partition(" ")
    out = {}
    for part in params.split(","):
        k, _, v = part.strip().partition("=")
        out[k] = v.strip('"')
    return scheme, out


def jwt_parts(token):
    header, claims, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(claims))


def get_token(reg, scope, creds=True, query=None):
    """The client side of the token flow, from the registry's own challenge."""
    status, headers, _ = fetch(reg.url + "/v2/", context=reg.ssl_context())
    assert status == 401
    scheme, params = parse_challenge(headers["WWW-Authenticate"])
    assert scheme == "Bearer"
    q = {"service": params["service"]}
    if scope:
        q["scope"] = scope
    q.update(query or {})
    hdrs = {"Authorization": basic(reg.username, reg.password)} if creds is True else (
        {"Authorization": basic(*creds)} if creds else {})
    return fetch(params["realm"] + "?" + urllib.parse.urlencode(q), headers=hdrs,
                 context=reg.ssl_context())


def head_only(reg, path, headers):
    """Status and headers of a GET, without reading the body."""
    if reg.tls:
        conn = http.client.HTTPSConnection("127.0.0.1", reg.port, context=reg.ssl_context(), timeout=10)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=10)
    headers = dict(headers)
    auth = reg.auth_header("repository:busybox:pull")
    if auth:
        headers["Authorization"] = auth
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.headers
    finally:
        conn.close()


def test_each_kind_answers_v2(registry):
    status, headers, body = fetch(registry.url + "/v2/", context=registry.ssl_context())
    assert headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert registry.host.startswith("127.0.0.1:") and registry.url.endswith(registry.host)
    if registry.kind in ("http", "tls"):
        assert status == 200 and json.loads(body) == {}
    elif registry.kind == "basic":
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Basic realm="rootless-test-basic"'
    else:
        assert status == 401
        realm = "https://127.0.0.1:%d/token" % registry.token_server.port
        assert headers["WWW-Authenticate"] == 'Bearer realm="%s",service="%s"' % (realm, TOKEN_SERVICE)
    if registry.kind == "http":
        assert registry.scheme == "http" and registry.ca_file is None
    else:
        assert registry.scheme == "https" and os.path.isfile(registry.ca_file)
        with pytest.raises(urllib.error.URLError) as err:  # the CA is really needed
            fetch(registry.url + "/v2/", context=ssl.create_default_context())
        assert isinstance(err.value.reason, ssl.SSLCertVerificationError)
        for name in ("127.0.0.1", "localhost"):  # the certificate's subjectAltNames
            ctx = registry.ssl_context()
            with socket.create_connection(("127.0.0.1", registry.port)) as raw:
                with ctx.wrap_socket(raw, server_hostname=name) as tls:
                    assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_basic_auth_checks_the_password(make_registry):
    reg = make_registry("basic")
    ctx = reg.ssl_context()
    ok = fetch(reg.url + "/v2/", {"Authorization": basic(reg.username, reg.password)}, ctx)
    assert ok[0] == 200
    bad = fetch(reg.url + "/v2/", {"Authorization": basic(reg.username, "wrong")}, ctx)
    assert bad[0] == 401 and bad[1]["WWW-Authenticate"] == 'Basic realm="rootless-test-basic"'
    with open(reg.htpasswd_file) as f:
        assert f.read().startswith(reg.username + ":$2")


def test_token_flow(make_registry):
    reg = make_registry("token")
    status, _, body = get_token(reg, "repository:busybox:pull,push")
    assert status == 200
    answer = json.loads(body)
    assert answer["token"] == answer["access_token"] and answer["expires_in"] == 300
    assert answer["issued_at"].endswith("Z")
    header, claims = jwt_parts(answer["token"])
    assert header["alg"] == "RS256" and header["typ"] == "JWT" and len(header["x5c"]) == 1
    assert claims["iss"] == TOKEN_ISSUER and claims["aud"] == TOKEN_SERVICE
    assert claims["sub"] == "tokenuser"
    assert claims["access"] == [{"type": "repository", "name": "busybox", "actions": ["pull", "push"]}]
    assert claims["nbf"] <= time.time() < claims["exp"]
    bearer = {"Authorization": "Bearer " + answer["token"]}
    assert fetch(reg.url + "/v2/", bearer, reg.ssl_context())[0] == 200
    # the token grants busybox, not another repository
    status, headers, _ = fetch(reg.url + "/v2/other/tags/list", bearer, reg.ssl_context())
    assert status == 401 and 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    assert 'scope="repository:other:pull"' in headers["WWW-Authenticate"]
    # a tampered token is refused (401, with error="invalid_token")
    forged = answer["token"][:-4] + ("AAAA" if not answer["token"].endswith("AAAA") else "BBBB")
    status, headers, _ = fetch(reg.url + "/v2/", {"Authorization": "Bearer " + forged}, reg.ssl_context())
    assert status == 401 and 'error="invalid_token"' in headers["WWW-Authenticate"]
    # a token for another audience is refused
    status, _, _ = fetch(reg.url + "/v2/", {"Authorization": "Bearer " + reg.token([], audience="elsewhere")},
                         reg.ssl_context())
    assert status == 401
    # wrong credentials: 401 from the token server
    assert get_token(reg, "repository:busybox:pull", creds=("tokenuser", "nope"))[0] == 401
    # anonymous: a token, but with no actions on a private repository (like Docker Hub)
    status, _, body = get_token(reg, "repository:busybox:pull", creds=None)
    assert status == 200
    anon = json.loads(body)["token"]
    assert jwt_parts(anon)[1]["access"] == [{"type": "repository", "name": "busybox", "actions": []}]
    assert jwt_parts(anon)[1]["sub"] == ""
    status, headers, _ = fetch(reg.url + "/v2/busybox/tags/list", {"Authorization": "Bearer " + anon},
                               reg.ssl_context())
    assert status == 401 and 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    reg.public_repos.add("busybox")
    anon = json.loads(get_token(reg, "repository:busybox:pull,push", creds=None)[2])["token"]
    assert jwt_parts(anon)[1]["access"][0]["actions"] == ["pull"]
    # every request was recorded
    assert [r["status"] for r in reg.token_requests] == [200, 401, 200, 200]
    assert reg.token_requests[0]["user"] == "tokenuser"
    assert reg.token_requests[0]["scopes"] == ["repository:busybox:pull,push"]


def test_token_oauth2_post_and_forced_failures(make_registry):
    reg = make_registry("token")
    form = urllib.parse.urlencode({"grant_type": "password", "username": "tokenuser", "password": "tokenpass",
                                   "service": TOKEN_SERVICE, "scope": "repository:a:pull repository:b:push",
                                   "client_id": "rootless-tests"}).encode()
    req = urllib.request.Request(reg.token_server.realm, data=form, method="POST")
    with urllib.request.urlopen(req, context=reg.ssl_context(), timeout=10) as resp:
        answer = json.loads(resp.read())
    assert "token" not in answer and answer["scope"] == "repository:a:pull repository:b:push"
    assert [a["name"] for a in jwt_parts(answer["access_token"])[1]["access"]] == ["a", "b"]
    assert fetch(reg.url + "/v2/", {"Authorization": "Bearer " + answer["access_token"]},
                 reg.ssl_context())[0] == 200
    reg.token_server.fail_next = [503]
    assert get_token(reg, "repository:a:pull")[0] == 503
    assert get_token(reg, "repository:a:pull")[0] == 200


def test_token_with_libtrust_kid_instead_of_x5c(make_registry):
    """distribution also accepts a "kid" header naming a rootcertbundle key by its libtrust
    fingerprint; this proves libtrust_key_id matches the registry's computation."""
    reg = make_registry("token", token_header="kid")
    token = json.loads(get_token(reg, "repository:busybox:pull")[2])["token"]
    header = jwt_parts(token)[0]
    assert "x5c" not in header and header["kid"] == libtrust_key_id(reg.rootcertbundle)
    assert len(header["kid"]) == 59 and header["kid"].count(":") == 11
    assert fetch(reg.url + "/v2/", {"Authorization": "Bearer " + token}, reg.ssl_context())[0] == 200


def test_rs256_openssl_and_cryptography_agree(make_registry):
    reg = make_registry("token")
    key = reg.token_server.signing_key
    data = b"header.claims"
    by_openssl = rs256_sign(key, data, use_cryptography=False)
    assert len(by_openssl) == 256
    try:
        import cryptography  # noqa: F401
        have_cryptography = True
    except ImportError:
        have_cryptography = False
    need(have_cryptography, "the cryptography module (Debian package python3-cryptography)")
    assert rs256_sign(key, data, use_cryptography=True) == by_openssl  # PKCS#1 v1.5 is deterministic


def test_push_pull_range_tamper_and_restart(registry, test_images, image_ids):
    reg = registry
    digest = reg.push_archive(os.path.join(test_images, "busybox-docker.tar"), "busybox:latest")
    assert digest.startswith("sha256:")
    status, headers, body = reg.get("/v2/busybox/manifests/latest", {"Accept": MANIFEST_V2})
    assert status == 200, body
    assert headers["Docker-Content-Digest"] == digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert headers["Content-Type"] == MANIFEST_V2
    manifest = json.loads(body)
    # the image ID of this machine's build (MANIFEST.txt, from skopeo): the push kept it
    assert manifest["config"]["digest"] == image_ids["busybox-docker.tar"]
    [layer] = manifest["layers"]

    # what the registry stores is what it serves
    for desc in (manifest["config"], layer):
        with open(reg.blob_path(desc["digest"]), "rb") as f:
            data = f.read()
        assert len(data) == desc["size"]
        assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"]
    blob_url = "/v2/busybox/blobs/" + layer["digest"]
    status, headers, body = reg.get(blob_url)
    assert status == 200 and body == data
    assert headers["Docker-Content-Digest"] == layer["digest"]
    assert headers["Accept-Ranges"] == "bytes"

    # byte ranges, as a resumed pull asks for them
    n = layer["size"] // 3
    status, headers, body = reg.get(blob_url, {"Range": "bytes=%d-" % n})
    assert status == 206
    assert headers["Content-Range"] == "bytes %d-%d/%d" % (n, layer["size"] - 1, layer["size"])
    assert body == data[n:]
    # past the end: 416 with Content-Range "bytes */SIZE", but distribution 2.8 leaves the blob's
    # Content-Length on the short error body, so a client reading the body gets a truncated read
    status, headers = head_only(reg, blob_url, {"Range": "bytes=%d-" % layer["size"]})
    assert status == 416 and headers["Content-Range"] == "bytes */%d" % layer["size"]
    assert int(headers["Content-Length"]) == layer["size"]
    with pytest.raises(http.client.IncompleteRead):
        reg.get(blob_url, {"Range": "bytes=%d-" % layer["size"]})

    # the registry does not check blobs when it serves them: tampering reaches the client
    path = reg.blob_path(layer["digest"])
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(bytes([data[100] ^ 0xFF]))
    status, _, body = reg.get(blob_url)
    assert status == 200 and len(body) == len(data) and body != data
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(data[100:101])

    # a crash and a restart on the same port keep the image
    url, port = reg.url, reg.port
    reg.stop()
    assert not reg.running
    with pytest.raises(OSError):
        reg.get("/v2/", auth=False, timeout=2)
    reg.start()
    assert reg.running and reg.url == url and reg.port == port
    status, headers, _ = reg.get("/v2/busybox/manifests/latest", {"Accept": MANIFEST_V2})
    assert status == 200 and headers["Docker-Content-Digest"] == digest
    status, _, body = reg.get(blob_url)
    assert status == 200 and body == data

    if reg.kind == "token":  # skopeo went through the token server with the credentials
        pushes = [r for r in reg.token_requests if any("busybox" in s and "push" in s for s in r["scopes"])]
        assert pushes and all(r["user"] == "tokenuser" and r["status"] == 200 for r in pushes)


def test_paused_registry_times_out_then_answers(make_registry):
    reg = make_registry("http")
    reg.pause()
    try:
        with pytest.raises(OSError):
            reg.get("/v2/", timeout=1)
    finally:
        reg.resume()
    assert reg.get("/v2/")[0] == 200


def test_close_ends_the_processes(make_registry):
    reg = make_registry("token")
    pid, port, tport = reg.proc.pid, reg.port, reg.token_server.port
    reg.close()
    assert not os.path.exists("/proc/%d" % pid)  # killed and reaped
    for p in (port, tport):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", p), timeout=2).close()
