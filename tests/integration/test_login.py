"""login and logout against real local registries (tests/registries.py): the credentials are
checked with the registry (basic auth, or its token server) before they are stored, logout
removes them, and connection problems end in one line that says what to do. The built
zipapp is driven like a user runs it, with a private HOME and XDG_CONFIG_HOME."""

import base64
import json
import os
import stat

import pytest

from registries import make_registry  # noqa: F401  (pytest fixture)

BUSYBOX = "busybox-docker.tar"


@pytest.fixture
def user_config(tmp_path, monkeypatch):
    """A private HOME (no ~/.docker) and XDG_CONFIG_HOME; returns $XDG_CONFIG_HOME/rootless."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    return tmp_path / "config" / "rootless"


def trust_ca(reg, user_config):
    certs = user_config / "certs.d" / reg.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(open(reg.ca_file, "rb").read())


def stored(user_config):
    """auth.json as {host: (user, secret)}, or None when there is no such file."""
    path = user_config / "auth.json"
    if not path.exists():
        return None
    auths = json.loads(path.read_text())["auths"]
    return {host: tuple(base64.b64decode(entry["auth"]).decode().split(":", 1)) for host, entry in auths.items()}


def v2_statuses(served):
    """The statuses of rootless's GET /v2/ requests in a registry's access log."""
    return [status for method, path, status, agent in served if path == "/v2/" and agent.startswith("rootless/")]


def login(rl, reg, password=None, *options, debug=False):
    password = reg.password if password is None else password
    return rl(*(["--debug"] if debug else []), "login", *options, "-u", reg.username, "--password-stdin",
              reg.host, input=(password + "\n").encode(), check=False)


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_login_stores_checked_credentials_and_logout_removes_them(rl, make_registry, user_config, test_images,
                                                                  unprivileged, kind):
    reg = make_registry(kind, access_log=True)
    reg.push_archive(os.path.join(test_images, BUSYBOX), "busybox:latest")
    trust_ca(reg, user_config)
    assert rl("pull", "-q", reg.host + "/busybox", check=False).returncode == 125  # not logged in
    proc = login(rl, reg)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"Login Succeeded\n"
    assert reg.password.encode() not in proc.stdout + proc.stderr
    assert str(user_config / "auth.json").encode() in proc.stderr  # the warning names the file
    assert stored(user_config) == {reg.host: (reg.username, reg.password)}
    assert stat.S_IMODE(os.stat(user_config / "auth.json").st_mode) == 0o600
    # The registry (or its token server) saw the credentials and said yes.
    if kind == "token":
        checks = [r for r in reg.token_requests if r["user"] == reg.username]
        assert checks and checks[-1]["status"] == 200
    # the challenge, then the answer with the credentials
    reg.wait_served(lambda served: v2_statuses(served)[-2:] == [401, 200], "login's GET /v2/ 401 then 200")
    # What login stored is what pull uses.
    assert rl.out("pull", "-q", reg.host + "/busybox").strip() == reg.host + "/busybox:latest"
    out = rl.out("logout", reg.host)
    assert out == "Removing login credentials for %s\n" % reg.host
    assert stored(user_config) == {}
    rl("rmi", reg.host + "/busybox")
    denied = rl("pull", "-q", reg.host + "/busybox", check=False)
    assert denied.returncode == 125 and b"unauthorized" in denied.stderr
    again = rl("logout", reg.host, check=False)
    assert again.returncode != 0 and again.stderr.decode().strip().endswith("not logged in to %s" % reg.host)


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_refused_login_stores_nothing(rl, make_registry, user_config, unprivileged, kind):
    reg = make_registry(kind)
    trust_ca(reg, user_config)
    proc = login(rl, reg, password="not-" + reg.password)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and err.count("\n") == 1
    assert "refused the credentials for %s" % reg.username in err and "not-" + reg.password not in err
    assert stored(user_config) is None
    if kind == "token":
        assert reg.token_requests[-1]["status"] == 401


def test_password_option_works_and_warns(rl, make_registry, user_config, unprivileged):
    reg = make_registry("basic")
    trust_ca(reg, user_config)
    proc = rl("login", "-u", reg.username, "-p", reg.password, reg.host)
    assert b"Using --password via the CLI is insecure" in proc.stderr
    assert stored(user_config) == {reg.host: (reg.username, reg.password)}


def test_tls_verify_false_tries_https_then_plain_http(rl, make_registry, user_config, unprivileged):
    """A registry that speaks plain HTTP (basic auth without TLS): HTTPS is tried first and
    fails; with --tls-verify=false login goes on to HTTP and checks the password there."""
    reg = make_registry("basic", tls=False, access_log=True)
    assert reg.url.startswith("http://")
    refused = login(rl, reg)  # verification required by default: HTTPS only
    assert refused.returncode == 125 and refused.stderr.count(b"\n") == 1
    assert b"https://%s/v2/" % reg.host.encode() in refused.stderr and stored(user_config) is None
    hint = "if the registry serves plain HTTP, add %s to insecure-registries in %s or use --tls-verify=false" % (
        reg.host, user_config / "registries.json")
    assert hint in refused.stderr.decode()
    proc = login(rl, reg, None, "--tls-verify=false", debug=True)
    assert proc.returncode == 0, proc.stderr
    tried = [line.split("login: trying ")[1] for line in proc.stderr.decode().splitlines() if "login: trying " in line]
    assert tried == ["https://%s/v2/" % reg.host, "http://%s/v2/" % reg.host]
    assert stored(user_config) == {reg.host: (reg.username, reg.password)}
    reg.wait_served(lambda served: v2_statuses(served)[-2:] == [401, 200], "login's GET /v2/ 401 then 200")
    wrong = login(rl, reg, "wrong", "--tls-verify=false")  # over HTTP too, the password is checked
    assert wrong.returncode == 125 and b"refused the credentials" in wrong.stderr
    assert stored(user_config) == {reg.host: (reg.username, reg.password)}
    # the hint's other remedy: listed in insecure-registries, no flag is needed
    rl("logout", reg.host)
    (user_config / "registries.json").write_text(json.dumps({"insecure-registries": [reg.host]}))
    assert login(rl, reg).returncode == 0
    assert stored(user_config) == {reg.host: (reg.username, reg.password)}


def test_untrusted_certificate_says_where_the_ca_goes(rl, make_registry, user_config, unprivileged):
    reg = make_registry("basic")  # TLS with a CA this machine does not trust
    proc = login(rl, reg)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and err.count("\n") == 1
    assert "certificate verify failed" in err
    assert os.path.join(str(user_config), "certs.d", reg.host, "ca.crt") in err
    assert "--tls-verify=false" in err
    assert stored(user_config) is None
    # what the hint says works: --cert-dir with the CA, or the CA in certs.d
    proc = login(rl, reg, None, "--cert-dir", reg.cert_dir)
    assert proc.returncode == 0, proc.stderr
    rl("logout", reg.host)
    trust_ca(reg, user_config)
    assert login(rl, reg).returncode == 0
    assert stored(user_config) == {reg.host: (reg.username, reg.password)}
