"""rootless.image.regconfig: registries.json, insecure registries, mirrors, TLS contexts and
the HTTP helper (against a loopback HTTP server of a few canned pages, not a registry)."""

import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import urllib.request

import pytest

from conftest import need
from rootless.errors import RootlessError, UsageError
from rootless.image import proxy, regconfig
from rootless.image.regconfig import ConnectionFailed, Headers, RegistryConfig, api_host, http_get, http_request


@pytest.fixture
def env(tmp_path):
    return {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config")}


def write_config(env, obj):
    path = regconfig.config_file(env)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return path


# -- loading --------------------------------------------------------------------------------------

def test_paths(env):
    assert regconfig.config_file(env) == os.path.join(env["XDG_CONFIG_HOME"], "rootless", "registries.json")
    assert regconfig.default_cert_dir({"HOME": "/h"}) == "/h/.config/rootless/certs.d"


def test_missing_file_gives_defaults(env):
    config = RegistryConfig.load(env)
    assert config.path is None
    assert config.registry_mirrors == [] and config.insecure_registries == []
    assert config.cert_dir == os.path.join(env["XDG_CONFIG_HOME"], "rootless", "certs.d")
    assert config.timeout == 30 and config.retries == 3
    assert RegistryConfig().timeout == 30


def test_full_file(env):
    path = write_config(env, {"registry-mirrors": ["https://Mirror.example.com/", "http://10.1.2.3:5000/pfx/"],
                              "insecure-registries": ["myreg:5000", "http://other.local", "10.0.0.0/8"],
                              "cert-dir": "~/certs", "timeout": 2.5, "retries": 0,
                              "data-root": "/ignored", "debug": True})
    config = RegistryConfig.load(env)
    assert config.path == path
    assert config.registry_mirrors == ["https://mirror.example.com", "http://10.1.2.3:5000/pfx"]
    assert config.insecure_registries == ["myreg:5000", "other.local", "10.0.0.0/8"]
    assert config.cert_dir == os.path.join(env["HOME"], "certs")
    assert config.timeout == 2.5 and config.retries == 0
    assert "RegistryConfig(" in repr(config)


def test_relative_cert_dir_is_relative_to_the_file(env):
    path = write_config(env, {"cert-dir": "mycerts"})
    assert RegistryConfig.load(env).cert_dir == os.path.join(os.path.dirname(path), "mycerts")


def test_explicit_path(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"retries": 7}')
    assert RegistryConfig.load(path=str(path)).retries == 7


@pytest.mark.parametrize("content", [
    "{not json", "", "[]", '"x"', b"\xff\xfe".decode("latin-1"),
    '{"registry-mirrors": "https://m"}', '{"registry-mirrors": [1]}', '{"insecure-registries": {}}',
    '{"cert-dir": 5}', '{"cert-dir": ""}', '{"timeout": "30"}', '{"timeout": 0}', '{"timeout": true}',
    '{"retries": -1}', '{"retries": 1.5}', '{"retries": false}',
    '{"registry-mirrors": ["ftp://m"]}', '{"registry-mirrors": ["mirror.example.com"]}',
    '{"registry-mirrors": ["https://m?x=1"]}', '{"registry-mirrors": ["https://m:notaport"]}',
    '{"insecure-registries": ["10.0.0.0/33"]}', '{"insecure-registries": ["a b"]}',
])
def test_malformed_file_is_a_one_line_usage_error_naming_it(env, content):
    path = write_config(env, content)
    with pytest.raises(UsageError) as e:
        RegistryConfig.load(env)
    assert path in str(e.value) and "\n" not in str(e.value)


def test_mirror_credentials_are_refused_without_repeating_them(env):
    write_config(env, {"registry-mirrors": ["https://user:hunter2@mirror.example.com"]})
    with pytest.raises(UsageError) as e:
        RegistryConfig.load(env)
    assert "hunter2" not in str(e.value) and "credentials" in str(e.value)


def test_unreadable_file(env, tmp_path):
    path = write_config(env, "{}")
    os.remove(path)
    os.mkdir(path)
    with pytest.raises(UsageError) as e:
        RegistryConfig.load(env)
    assert path in str(e.value)


# -- insecure, mirrors, api_host -------------------------------------------------------------------

def test_insecure_exact_host_and_port():
    config = RegistryConfig(insecure_registries=["myreg:5000", "Plain.Example", "[::1]:5000"])
    assert config.insecure("myreg:5000") and config.insecure("https://MYREG:5000/v2/")
    assert not config.insecure("myreg") and not config.insecure("myreg:5001")
    assert config.insecure("plain.example") and not config.insecure("plain.example:443")
    assert config.insecure("[::1]:5000") and not config.insecure("[::1]")
    assert not config.insecure("docker.io")


def test_loopback_is_not_insecure_by_default():
    config = RegistryConfig()
    for host in ("localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5000", "[::1]:5000", "::1"):
        assert not config.insecure(host)


def test_insecure_cidr_matches_ip_addresses_only():
    config = RegistryConfig(insecure_registries=["127.0.0.0/8", "10.0.0.0/8", "fd00::/8"])
    assert config.insecure("127.0.0.1:5000") and config.insecure("10.2.3.4") and config.insecure("10.2.3.4:443")
    assert config.insecure("[fd12::1]:5000") and config.insecure("fd12::1")
    assert not config.insecure("11.0.0.1") and not config.insecure("[fe80::1]:5000")
    assert not config.insecure("localhost:5000")  # names are not resolved
    assert not config.insecure("10.example.com")


def test_mirrors_apply_to_docker_hub_only():
    config = RegistryConfig(registry_mirrors=["https://m1.example/", "http://m2.example:5000"])
    for hub in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert config.mirrors(hub) == ["https://m1.example", "http://m2.example:5000"]
    assert config.mirrors("quay.io") == []
    assert RegistryConfig().mirrors("docker.io") == []


def test_api_host():
    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("index.docker.io") == "registry-1.docker.io"
    assert api_host("registry-1.docker.io") == "registry-1.docker.io"
    assert api_host("quay.io") == "quay.io" and api_host("localhost:5000") == "localhost:5000"


# -- endpoints ------------------------------------------------------------------------------------

def urls(endpoints):
    return [(url, None if ctx is None else ctx.verify_mode) for url, ctx in endpoints]


def test_endpoints_secure_and_insecure():
    config = RegistryConfig(insecure_registries=["reg.local:5000"])
    assert urls(config.endpoints("quay.io")) == [("https://quay.io", ssl.CERT_REQUIRED)]
    assert urls(config.endpoints("docker.io")) == [("https://registry-1.docker.io", ssl.CERT_REQUIRED)]
    assert urls(config.endpoints("reg.local:5000")) == [("https://reg.local:5000", ssl.CERT_NONE),
                                                        ("http://reg.local:5000", None)]
    assert urls(config.endpoints("reg.local:5000", True)) == [("https://reg.local:5000", ssl.CERT_REQUIRED)]
    assert urls(config.endpoints("quay.io", False)) == [("https://quay.io", ssl.CERT_NONE), ("http://quay.io", None)]
    assert urls(config.endpoints("localhost:5000")) == [("https://localhost:5000", ssl.CERT_REQUIRED)]
    secure = config.endpoints("quay.io")[0][1]
    assert secure.check_hostname and not config.endpoints("quay.io", False)[0][1].check_hostname


def test_endpoints_with_mirrors():
    config = RegistryConfig(registry_mirrors=["https://m1.example", "http://m2.example:5000/x"],
                            insecure_registries=["m3.example"])
    assert urls(config.endpoints("docker.io", mirrors=True)) == [
        ("https://m1.example", ssl.CERT_REQUIRED), ("http://m2.example:5000/x", None),
        ("https://registry-1.docker.io", ssl.CERT_REQUIRED)]
    assert urls(config.endpoints("docker.io")) == [("https://registry-1.docker.io", ssl.CERT_REQUIRED)]
    assert urls(config.endpoints("quay.io", mirrors=True)) == [("https://quay.io", ssl.CERT_REQUIRED)]
    insecure_mirror = RegistryConfig(registry_mirrors=["https://m3.example"], insecure_registries=["m3.example"])
    assert urls(insecure_mirror.endpoints("docker.io", mirrors=True))[0] == ("https://m3.example", ssl.CERT_NONE)


def test_contexts_are_cached():
    config = RegistryConfig()
    assert config.ssl_context("quay.io") is config.ssl_context("https://quay.io")
    assert config.ssl_context("quay.io") is not config.ssl_context("quay.io", verify=False)


# -- certificates ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA certificate (ca.crt) and a client certificate with its key (client.cert/.key)."""
    need(shutil.which("openssl") is not None, "openssl is installed (Debian package openssl)")
    d = tmp_path_factory.mktemp("certs")
    for name, cn in (("ca", "rootless test CA"), ("client", "rootless test client")):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=" + cn, "-keyout", str(d / (name + ".key")),
                        "-out", str(d / (name + ".pem"))], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return d


def install(directory, files):
    os.makedirs(directory, exist_ok=True)
    for name, source in files.items():
        shutil.copy(str(source), os.path.join(directory, name))


def ca_names(ctx):
    return [dict(x[0] for x in c["subject"]).get("commonName") for c in ctx.get_ca_certs()]


def test_ssl_context_loads_the_hosts_cas_and_client_certificate(certs, tmp_path):
    certs_d = tmp_path / "certs.d"
    install(str(certs_d / "reg.local:5000"), {"ca.crt": certs / "ca.pem", "client.cert": certs / "client.pem",
                                              "client.key": certs / "client.key"})
    config = RegistryConfig(cert_dir=str(certs_d))
    ctx = config.ssl_context("reg.local:5000")
    assert "rootless test CA" in ca_names(ctx)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert "rootless test CA" not in ca_names(config.ssl_context("quay.io"))
    unverified = config.ssl_context("reg.local:5000", verify=False)
    assert unverified.verify_mode == ssl.CERT_NONE and not unverified.check_hostname


def test_docker_hub_certificates_under_either_name(certs, tmp_path):
    install(str(tmp_path / "registry-1.docker.io"), {"ca.crt": certs / "ca.pem"})
    assert "rootless test CA" in ca_names(RegistryConfig(cert_dir=str(tmp_path)).ssl_context("docker.io"))


def test_explicit_cert_dir_flat_or_per_host(certs, tmp_path):
    flat = tmp_path / "flat"
    install(str(flat), {"my.crt": certs / "ca.pem"})
    config = RegistryConfig(cert_dir=str(tmp_path / "none"))
    assert "rootless test CA" in ca_names(config.ssl_context("quay.io", cert_dir=str(flat)))
    nested = tmp_path / "nested"
    install(str(nested / "quay.io"), {"ca.crt": certs / "ca.pem"})
    assert "rootless test CA" in ca_names(config.ssl_context("quay.io", cert_dir=str(nested)))
    eps = config.endpoints("quay.io", cert_dir=str(flat))
    assert "rootless test CA" in ca_names(eps[0][1])


def test_bad_certificate_files(certs, tmp_path):
    host = tmp_path / "reg.local"
    install(str(host), {"ca.crt": certs / "ca.key"})  # a key, not a certificate
    with pytest.raises(UsageError) as e:
        RegistryConfig(cert_dir=str(tmp_path)).ssl_context("reg.local")
    assert "ca.crt" in str(e.value) and "\n" not in str(e.value)
    os.remove(str(host / "ca.crt"))
    install(str(host), {"client.cert": certs / "client.pem"})
    with pytest.raises(UsageError) as e:
        RegistryConfig(cert_dir=str(tmp_path)).ssl_context("reg.local")
    assert "no key" in str(e.value)
    os.remove(str(host / "client.cert"))
    install(str(host), {"client.key": certs / "client.key"})
    with pytest.raises(UsageError) as e:
        RegistryConfig(cert_dir=str(tmp_path)).ssl_context("reg.local")
    assert "no certificate" in str(e.value)
    install(str(host), {"client.cert": certs / "ca.pem"})  # does not match the key
    with pytest.raises(UsageError):
        RegistryConfig(cert_dir=str(tmp_path)).ssl_context("reg.local")


# -- Headers --------------------------------------------------------------------------------------

def test_headers_are_case_insensitive_and_join_repeats():
    h = Headers([("WWW-Authenticate", 'Basic realm="a"'), ("Content-Type", "x"),
                 ("www-authenticate", 'Bearer realm="b"')])
    assert h["www-authenticate"] == 'Basic realm="a", Bearer realm="b"'
    assert h.get("CONTENT-TYPE") == "x" and "Content-Type" in h and h.get("missing") is None
    assert 5 not in h
    h["X-New"] = "1"
    assert h["x-new"] == "1"


# -- NO_PROXY ------------------------------------------------------------------------------------

@pytest.mark.parametrize("host, no_proxy", [
    ("quay.io", "*"), ("quay.io", "quay.io"), ("QUAY.io:443", " Quay.IO "), ("cdn.quay.io", "quay.io"),
    ("cdn.quay.io", ".quay.io"), ("quay.io", ".quay.io"), ("reg.corp:5000", "x.example,.corp"),
    ("reg.corp:5000", "reg.corp:5000"), ("10.1.2.3:5000", "10.0.0.0/8"), ("10.1.2.3", "10.1.2.3"),
    ("127.0.0.1:5000", "127.0.0.0/8"), ("[::1]:5000", "::1"), ("[::1]:5000", "[::1]:5000"),
    ("[fd00::5]:5000", "fd00::/8"), ("192.168.1.9", "a,,192.168.0.0/16"),
])
def test_no_proxy_exempts(host, no_proxy):
    assert proxy.no_proxy_matches(host, no_proxy)


@pytest.mark.parametrize("host, no_proxy", [
    ("quay.io", ""), ("quay.io", "notquay.io"), ("evilquay.io", "quay.io"), ("quay.io", "cdn.quay.io"),
    ("reg.corp:5000", "reg.corp:5001"), ("10.1.2.3", "11.0.0.0/8"), ("10.1.2.3", "10.1.2.4"),
    ("127.0.0.1:5000", ""), ("localhost:5000", "127.0.0.1"), ("10.1.2.3", "10"),
    ("reg.corp", "10.0.0.0/8"), ("quay.io", "not a cidr/8"),
])
def test_no_proxy_does_not_exempt(host, no_proxy):
    assert not proxy.no_proxy_matches(host, no_proxy)


# -- HTTP -----------------------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        port = self.server.server_address[1]
        routes = {
            "/ok": (200, b"hello", [("WWW-Authenticate", 'Basic realm="a"'), ("WWW-Authenticate", 'Bearer realm="b"')]),
            "/missing": (404, b'{"errors":[]}', []),
            "/same": (302, b"", [("Location", "/echo")]),
            "/other": (307, b"", [("Location", "http://localhost:%d/echo" % port)]),
            "/perm": (308, b"", [("Location", "/echo")]),
            "/file": (302, b"", [("Location", "file:///etc/passwd")]),
            "/ftp": (302, b"", [("Location", "ftp://127.0.0.1/x")]),
            "/big": (200, b"x" * 2000, []),
        }
        if self.path == "/echo":
            self._send(200, (self.headers.get("Authorization") or "none").encode())
        elif self.path == "/agent":
            self._send(200, (self.headers.get("User-Agent") or "").encode())
        elif self.path in routes:
            status, body, headers = routes[self.path]
            self._send(status, body, headers)
        else:
            self._send(500)

    do_HEAD = do_GET

    def do_PUT(self):
        self._send(307, b"", [("Location", "/echo")])


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_http_get_returns_4xx_without_raising(server):
    status, headers, body = http_get(server + "/ok", timeout=5)
    assert status == 200 and body == b"hello"
    assert headers["www-authenticate"] == 'Basic realm="a", Bearer realm="b"'
    status, headers, body = http_get(server + "/missing", timeout=5)
    assert status == 404 and body == b'{"errors":[]}' and headers["Content-Length"] == "13"


def test_user_agent(server):
    assert http_get(server + "/agent")[2].startswith(b"rootless/")
    assert http_get(server + "/agent", {"User-Agent": "me"})[2] == b"me"


def test_redirects_keep_authorization_on_the_same_host_only(server):
    auth = {"Authorization": "Bearer secret-token"}
    assert http_get(server + "/same", auth)[2] == b"Bearer secret-token"
    assert http_get(server + "/perm", auth)[:3:2] == (200, b"Bearer secret-token")
    status, _, body = http_get(server + "/other", auth)
    assert (status, body) == (200, b"none")


def test_redirects_to_other_schemes_are_not_followed(server):
    for path in ("/file", "/ftp"):
        status, headers, _ = http_get(server + path)
        assert status == 302 and headers["location"].split(":")[0] in ("file", "ftp")


def test_put_gets_the_redirect_back(server):
    with http_request(server + "/x", {"Content-Length": "2"}, method="PUT", data=b"hi", timeout=5) as r:
        assert r.status == 307 and r.headers["location"] == "/echo"


def test_http_request_streams_and_head(server):
    with http_request(server + "/big") as r:
        assert r.status == 200 and r.read(10) == b"x" * 10 and len(r.read()) == 1990
        assert r.url == server + "/big"
    with http_request(server + "/big", method="HEAD") as r:
        assert r.status == 200 and r.headers["content-length"] == "2000" and r.read() == b""
    r = http_request(server + "/same", {"Authorization": "x"})
    assert r.url == server + "/echo" and r.read() == b"x"
    r.close()
    r.close()


def test_max_body(server):
    with pytest.raises(RootlessError) as e:
        http_get(server + "/big", max_body=1000)
    assert "1000" in str(e.value)
    assert len(http_get(server + "/big", max_body=None)[2]) == 2000
    assert len(http_get(server + "/big", max_body=2000)[2]) == 2000


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/", "data:,x", "/relative", ""])
def test_only_http_and_https_urls(url):
    with pytest.raises(UsageError):
        http_get(url)


def test_connection_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = "http://127.0.0.1:%d/v2/" % port
    with pytest.raises(ConnectionFailed) as e:
        http_get(url, timeout=5)
    assert url in str(e.value) and e.value.url == url and not e.value.certificate_error
    assert "\n" not in str(e.value)


def test_https_to_a_plain_http_server_fails_cleanly(server):
    with pytest.raises(ConnectionFailed) as e:
        http_get(server.replace("http:", "https:") + "/ok", context=RegistryConfig().ssl_context("x", verify=False),
                 timeout=5)
    assert "\n" not in str(e.value)


def test_header_values_are_not_repeated_in_errors(server):
    with pytest.raises(ConnectionFailed) as e:
        http_get(server + "/ok", {"Authorization": "Basic c2VjcmV0\r\nX: y"})
    assert "c2VjcmV0" not in str(e.value)


def test_redirect_handler_directly():
    handler = regconfig._redirect_handler()
    req = urllib.request.Request("https://reg.example/v2/x/blobs/sha256:1", headers={"Authorization": "Bearer t",
                                                                                      "Accept": "*/*"})
    new = handler.redirect_request(req, None, 307, "", {}, "https://cdn.example/blob?sig=1")
    assert new.get_header("Authorization") is None and new.get_header("Accept") == "*/*"
    new = handler.redirect_request(req, None, 302, "", {}, "https://reg.example/v2/elsewhere")
    assert new.get_header("Authorization") == "Bearer t"
    new = handler.redirect_request(req, None, 302, "", {}, "http://reg.example/v2/elsewhere")  # downgrade
    assert new.get_header("Authorization") is None
    plain = urllib.request.Request("http://reg.example/a", headers={"Authorization": "Bearer t"})
    new = handler.redirect_request(plain, None, 301, "", {}, "https://reg.example/a")  # upgrade
    assert new.get_header("Authorization") == "Bearer t"
    assert handler.redirect_request(req, None, 302, "", {}, "file:///etc/passwd") is None
    post = urllib.request.Request("https://reg.example/a", data=b"x", method="POST")
    assert handler.redirect_request(post, None, 307, "", {}, "https://reg.example/b") is None
    assert handler.redirect_request(req, None, 300, "", {}, "https://reg.example/b") is None
