"""rootless.image.auth: credential stores and helpers, challenges, the token exchange (with an
opener that answers as a token server would, to drive the cache with a clock); and the
login/logout option handling that never reaches a registry. Login against real registries
is in tests/integration/test_login.py."""

import base64
import io
import json
import os
import pickle
import random
import stat
import sys
import urllib.parse

import pytest

from rootless.errors import NotFound, RootlessError, Unsupported, UsageError
from rootless.image import auth, regconfig
from rootless.image.auth import (Authenticator, Credentials, Unauthorized, auth_file, erase_credentials,
                                 get_credentials, lookup_credentials, parse_challenge, parse_challenges,
                                 store_credentials)

SECRET = "s3cr3t-p@ss:word"
HUB_CHALLENGE = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                 'scope="repository:library/alpine:pull"')


@pytest.fixture
def env(tmp_path):
    """A private HOME and XDG_CONFIG_HOME, an empty Docker config dir, PATH with a bin dir."""
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    (tmp_path / "log").mkdir()
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "PATH": str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", os.defpath),
            "LOGDIR": str(tmp_path / "log")}


def b64(text):
    return base64.b64encode(text.encode()).decode()


def write_docker_config(env, obj):
    path = os.path.join(env["HOME"], ".docker", "config.json")
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def write_helper(env, name, script):
    """docker-credential-NAME: logs its arguments and stdin, then runs ``script``."""
    path = os.path.join(os.path.dirname(env["LOGDIR"]), "bin", "docker-credential-" + name)
    with open(path, "w") as f:
        f.write('#!/bin/sh\nserver=$(cat)\nprintf "%%s\\n" "$*" >> "$LOGDIR/%s.args"\n'
                'printf "%%s\\n" "$server" >> "$LOGDIR/%s.stdin"\n%s\n' % (name, name, script))
    os.chmod(path, 0o755)
    return path


def helper_log(env, name, what):
    try:
        with open(os.path.join(env["LOGDIR"], "%s.%s" % (name, what))) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


KEYCHAIN = '''case "$server" in
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hubuser","Secret":"hub-secret"}' "$server";;
  gcr.io) printf '{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"gcr-secret"}';;
  *) echo "credentials not found in native keychain"; exit 1;;
esac'''


# -- normalisation -------------------------------------------------------------------------------

@pytest.mark.parametrize("server, host", [
    ("docker.io", "docker.io"), ("index.docker.io", "docker.io"), ("registry-1.docker.io", "docker.io"),
    ("https://index.docker.io/v1/", "docker.io"), ("HTTPS://Index.Docker.IO/v1/", "docker.io"),
    ("quay.io", "quay.io"), ("https://quay.io", "quay.io"), ("http://localhost:5000/v2/", "localhost:5000"),
    ("Registry.Example.com:443", "registry.example.com:443"), ("[::1]:5000", "[::1]:5000"),
    ("docker.io/library/alpine", "docker.io"), (" ghcr.io ", "ghcr.io"),
])
def test_normalize_host(server, host):
    assert auth.normalize_host(server) == host


@pytest.mark.parametrize("server", ["", "   ", "https://", "user@host", "a b", "ho\nst", "x?y"])
def test_normalize_host_rejects(server):
    with pytest.raises(UsageError):
        auth.normalize_host(server)


def test_docker_key():
    assert auth.docker_key("registry-1.docker.io") == "https://index.docker.io/v1/"
    assert auth.docker_key("https://quay.io/") == "quay.io"


# -- Credentials ----------------------------------------------------------------------------------

def test_credentials_is_a_tuple_that_hides_the_secret():
    creds = Credentials("alice", SECRET)
    user, secret = creds
    assert (user, secret) == ("alice", SECRET) and creds == ("alice", SECRET)
    assert creds.username == "alice" and creds.secret == SECRET
    for text in (repr(creds), str(creds), "%s" % (creds,), repr([creds]), "{}".format(creds)):
        assert SECRET not in text and "alice" in text
    assert pickle.loads(pickle.dumps(creds)) == creds


# -- our store ------------------------------------------------------------------------------------

def test_auth_file_location(env):
    assert auth_file(env) == os.path.join(env["XDG_CONFIG_HOME"], "rootless", "auth.json")
    env = dict(env)
    del env["XDG_CONFIG_HOME"]
    assert auth_file(env) == os.path.join(env["HOME"], ".config", "rootless", "auth.json")


def test_store_get_erase_round_trip(env):
    assert get_credentials("quay.io", env) is None
    path = store_credentials("quay.io", "alice", SECRET, env)
    assert path == auth_file(env)
    assert get_credentials("quay.io", env) == ("alice", SECRET)
    assert get_credentials("https://quay.io/v2/", env) == ("alice", SECRET)
    assert isinstance(get_credentials("quay.io", env), Credentials)
    assert lookup_credentials("quay.io", env) == ("alice", SECRET, path)
    assert get_credentials("ghcr.io", env) is None
    assert erase_credentials("quay.io", env) is True
    assert get_credentials("quay.io", env) is None
    assert erase_credentials("quay.io", env) is False


def test_store_file_format_and_modes(env):
    path = store_credentials("registry-1.docker.io", "bob", SECRET, env)
    with open(path) as f:
        data = json.load(f)
    assert data == {"auths": {"docker.io": {"auth": b64("bob:" + SECRET)}}}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert sorted(os.listdir(os.path.dirname(path))) == ["auth.json"]  # no temp or lock files left


def test_store_tightens_an_existing_directory(env):
    directory = os.path.join(env["XDG_CONFIG_HOME"], "rootless")
    os.makedirs(directory)
    os.chmod(directory, 0o755)
    store_credentials("quay.io", "alice", SECRET, env)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700


@pytest.mark.parametrize("alias", ["docker.io", "index.docker.io", "registry-1.docker.io",
                                   "https://index.docker.io/v1/"])
def test_docker_hub_aliases_share_one_entry(env, alias):
    store_credentials(alias, "bob", SECRET, env)
    for other in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert get_credentials(other, env) == ("bob", SECRET)
    with open(auth_file(env)) as f:
        assert list(json.load(f)["auths"]) == ["docker.io"]
    assert erase_credentials("index.docker.io", env)
    assert get_credentials("docker.io", env) is None


def test_store_keeps_other_entries_and_keys_and_replaces_aliases(env):
    path = auth_file(env)
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        json.dump({"auths": {"ghcr.io": {"auth": b64("g:h")}, "https://quay.io": {"auth": b64("old:old")}},
                   "other": 1}, f)
    store_credentials("quay.io", "new", SECRET, env)
    with open(path) as f:
        data = json.load(f)
    assert data == {"auths": {"ghcr.io": {"auth": b64("g:h")}, "quay.io": {"auth": b64("new:" + SECRET)}},
                    "other": 1}


def test_concurrent_logins_lose_no_entry(env):
    import threading
    threads = [threading.Thread(target=store_credentials, args=("reg%d.example" % i, "u%d" % i, SECRET, env))
               for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(16):
        assert get_credentials("reg%d.example" % i, env) == ("u%d" % i, SECRET)


def test_secret_may_contain_colons_but_username_may_not(env):
    store_credentials("quay.io", "alice", "a:b:c", env)
    assert get_credentials("quay.io", env) == ("alice", "a:b:c")
    for bad in ("", "a:b", "a\nb"):
        with pytest.raises(UsageError):
            store_credentials("quay.io", bad, SECRET, env)
    with pytest.raises(UsageError):
        store_credentials("quay.io", "alice", "", env)


def test_malformed_store_is_a_usage_error_without_secrets(env):
    path = auth_file(env)
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write('{"auths": {"quay.io": {"auth": "%s"}}' % b64("alice:" + SECRET))  # truncated JSON
    with pytest.raises(UsageError) as e:
        get_credentials("quay.io", env)
    assert path in str(e.value) and SECRET not in str(e.value) and b64("alice:" + SECRET) not in str(e.value)
    with pytest.raises(UsageError):
        store_credentials("quay.io", "alice", SECRET, env)
    with open(path, "w") as f:
        json.dump({"auths": {"quay.io": {"auth": "!!notbase64"}}}, f)
    with pytest.raises(UsageError) as e:
        get_credentials("quay.io", env)
    assert "quay.io" in str(e.value) and "\n" not in str(e.value)
    with open(path, "w") as f:
        json.dump([], f)
    with pytest.raises(UsageError):
        get_credentials("quay.io", env)


# -- Docker's config.json -------------------------------------------------------------------------

def test_docker_auths_keys(env):
    write_docker_config(env, {"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hub:hubpw")},
        "https://quay.io": {"auth": b64("q:qpw"), "email": "x@y"},
        "localhost:5000": {"auth": b64("l:lpw")},
        "ghcr.io": {},
    }})
    for alias in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert get_credentials(alias, env) == ("hub", "hubpw")
    assert get_credentials("quay.io", env) == ("q", "qpw")
    assert get_credentials("localhost:5000", env) == ("l", "lpw")
    assert get_credentials("localhost", env) is None
    assert get_credentials("ghcr.io", env) is None
    assert lookup_credentials("quay.io", env)[2] == os.path.join(env["HOME"], ".docker", "config.json")


def test_docker_config_env_var(env, tmp_path):
    other = tmp_path / "dockercfg"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"auths": {"quay.io": {"auth": b64("d:dpw")}}}))
    write_docker_config(env, {"auths": {"quay.io": {"auth": b64("home:hpw")}}})
    assert get_credentials("quay.io", dict(env, DOCKER_CONFIG=str(other))) == ("d", "dpw")
    assert auth.docker_config_file(dict(env, DOCKER_CONFIG=str(other))) == str(other / "config.json")


def test_ours_before_dockers(env):
    write_docker_config(env, {"auths": {"quay.io": {"auth": b64("docker:dpw")}}})
    store_credentials("quay.io", "ours", SECRET, env)
    assert get_credentials("quay.io", env) == ("ours", SECRET)
    erase_credentials("quay.io", env)
    assert get_credentials("quay.io", env) == ("docker", "dpw")
    # logout never touches Docker's file
    with open(os.path.join(env["HOME"], ".docker", "config.json")) as f:
        assert "quay.io" in json.load(f)["auths"]


@pytest.mark.parametrize("content", ["{not json", "[]", '{"auths": []}', '{"auths": {"quay.io": "x"}}',
                                     '{"auths": {"quay.io": {"auth": "???"}}}', '{"credsStore": 5}'])
def test_malformed_docker_config_is_ignored(env, content):
    write_docker_config(env, content)
    assert get_credentials("quay.io", env) is None


# -- credential helpers ---------------------------------------------------------------------------

def test_cred_helpers_get_the_server_on_stdin_not_in_arguments(env):
    write_helper(env, "fake", KEYCHAIN)
    write_docker_config(env, {"credHelpers": {"docker.io": "fake", "https://gcr.io": "fake"}})
    assert get_credentials("registry-1.docker.io", env) == ("hubuser", "hub-secret")
    assert get_credentials("gcr.io", env) == ("oauth2accesstoken", "gcr-secret")
    assert lookup_credentials("gcr.io", env)[2] == "docker-credential-fake"
    assert helper_log(env, "fake", "args") == ["get", "get", "get"]
    assert helper_log(env, "fake", "stdin") == ["https://index.docker.io/v1/", "gcr.io", "gcr.io"]


def test_creds_store_and_priorities(env):
    write_helper(env, "store", KEYCHAIN)
    write_helper(env, "special", 'printf \'{"Username":"special","Secret":"sp"}\'')
    write_docker_config(env, {"credsStore": "store", "credHelpers": {"gcr.io": "special"},
                              "auths": {"quay.io": {"auth": b64("q:qpw")}, "gcr.io": {"auth": b64("a:b")}}})
    assert get_credentials("gcr.io", env) == ("special", "sp")          # credHelpers first
    assert get_credentials("docker.io", env) == ("hubuser", "hub-secret")  # then credsStore
    assert get_credentials("quay.io", env) == ("q", "qpw")               # store says not found: auths
    assert helper_log(env, "store", "stdin") == ["https://index.docker.io/v1/", "quay.io"]
    store_credentials("docker.io", "ours", SECRET, env)
    assert get_credentials("docker.io", env) == ("ours", SECRET)        # ours before all of Docker's


def test_missing_or_failing_helper_means_no_credentials(env):
    write_docker_config(env, {"credsStore": "desktop", "auths": {"quay.io": {"auth": b64("q:qpw")}}})
    assert get_credentials("quay.io", env) == ("q", "qpw")
    assert get_credentials("docker.io", env) is None
    write_helper(env, "desktop", "echo oops >&2; exit 3")
    assert get_credentials("docker.io", env) is None
    write_helper(env, "desktop", 'printf \'{"Username":"<token>","Secret":"identity"}\'')
    assert get_credentials("docker.io", env) is None
    write_helper(env, "desktop", 'printf \'{"Username":"","Secret":""}\'')
    assert get_credentials("docker.io", env) is None


def test_helper_garbage_is_an_error_without_its_output(env):
    write_helper(env, "bad", "echo 'not json " + SECRET + "'")
    write_docker_config(env, {"credsStore": "bad"})
    with pytest.raises(RootlessError) as e:
        get_credentials("quay.io", env)
    assert "docker-credential-bad" in str(e.value) and SECRET not in str(e.value)


def test_helper_name_may_not_be_a_path(env):
    write_docker_config(env, {"credsStore": "../../bin/sh"})
    with pytest.raises(UsageError) as e:
        get_credentials("quay.io", env)
    assert "config.json" in str(e.value)


def test_helper_time_out(env, monkeypatch):
    monkeypatch.setattr(auth, "HELPER_TIMEOUT", 0.5)
    write_helper(env, "slow", "exec sleep 30")
    write_docker_config(env, {"credsStore": "slow"})
    with pytest.raises(RootlessError) as e:
        get_credentials("quay.io", env)
    assert "did not answer" in str(e.value)


# -- parse_challenge ------------------------------------------------------------------------------

def test_parse_docker_hub_challenge():
    assert parse_challenge(HUB_CHALLENGE) == ("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/alpine:pull"})


@pytest.mark.parametrize("header, expected", [
    ('Basic realm="x"', ("basic", {"realm": "x"})),
    ('Basic realm="Registry Realm"', ("basic", {"realm": "Registry Realm"})),
    ("Basic", ("basic", {})),
    ('BEARER Realm="https://a/t", Service="s"', ("bearer", {"realm": "https://a/t", "service": "s"})),
    ('Bearer realm="https://a/t",scope="repository:a/b:pull,push"',
     ("bearer", {"realm": "https://a/t", "scope": "repository:a/b:pull,push"})),
    ('Bearer realm="a,b=c \\"d\\" \\\\e",service=s', ("bearer", {"realm": 'a,b=c "d" \\e', "service": "s"})),
    ("Bearer realm=https://a/t?x=1,service=registry", ("bearer", {"realm": "https://a/t?x=1", "service": "registry"})),
    ('Bearer  realm = "spaced" ,  service="s"', ("bearer", {"realm": "spaced", "service": "s"})),
    ('Bearer realm="x",error="insufficient_scope",scope="repository:x:pull repository:y:pull"',
     ("bearer", {"realm": "x", "error": "insufficient_scope", "scope": "repository:x:pull repository:y:pull"})),
    ('Basic realm="b", Bearer realm="t"', ("bearer", {"realm": "t"})),
    ('Negotiate abc==, Basic realm="b"', ("negotiate", {})),
    ('Bearer realm="unterminated', ("bearer", {"realm": "unterminated"})),
    ("", ("", {})),
    ("   ,,, ", ("", {})),
    ('realm="no scheme"', ("", {"realm": "no scheme"})),
])
def test_parse_challenge(header, expected):
    assert parse_challenge(header) == expected


def test_parse_challenges_lists_all():
    assert parse_challenges('Basic realm="a, b", Bearer realm=x,service=y') == [
        ("basic", {"realm": "a, b"}), ("bearer", {"realm": "x", "service": "y"})]


def test_parse_challenge_never_raises_on_garbage():
    rng = random.Random(1234)
    alphabet = 'Bearer realm=",\\ \t=service"scope:/'
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        scheme, params = parse_challenge(text)
        assert isinstance(scheme, str) and isinstance(params, dict)


# -- Authenticator --------------------------------------------------------------------------------

class FakeTokenServer:
    """An opener: records each GET and answers with ``answers`` in turn (or the last one)."""

    def __init__(self, *answers):
        self.answers = list(answers) or [(200, {}, b'{"token": "tok-1"}')]
        self.calls = []

    def __call__(self, url, headers):
        self.calls.append((url, dict(headers)))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        status, headers, body = answer
        return status, headers, body if isinstance(body, bytes) else json.dumps(body).encode()

    def query(self, n=-1):
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.calls[n][0]).query)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_basic_challenge():
    server = FakeTokenServer()
    a = Authenticator("localhost:5000", ("alice", SECRET), server)
    assert a.authorization('Basic realm="Registry"', "repository:x:pull") == "Basic " + b64("alice:" + SECRET)
    assert Authenticator("localhost:5000", None, server).authorization('Basic realm="r"', "") is None
    assert server.calls == []


def test_bearer_anonymous():
    server = FakeTokenServer((200, {}, {"token": "anon-token", "expires_in": 300}))
    a = Authenticator("docker.io", None, server)
    assert a.authorization(HUB_CHALLENGE, "repository:library/alpine:pull") == "Bearer anon-token"
    url, headers = server.calls[0]
    assert url.startswith("https://auth.docker.io/token?")
    assert server.query() == {"service": ["registry.docker.io"], "scope": ["repository:library/alpine:pull"]}
    assert "Authorization" not in headers


def test_bearer_with_credentials_and_access_token():
    server = FakeTokenServer((200, {}, {"access_token": "acc"}))
    a = Authenticator("docker.io", ("alice", SECRET), server)
    assert a.authorization(HUB_CHALLENGE, "repository:alice/app:pull,push") == "Bearer acc"
    assert server.calls[0][1] == {"Authorization": "Basic " + b64("alice:" + SECRET)}
    assert server.query()["scope"] == ["repository:alice/app:pull,push"]


def test_bearer_several_scopes_and_realm_with_query():
    server = FakeTokenServer()
    a = Authenticator("ghcr.io", None, server)
    a.authorization('Bearer realm="https://ghcr.io/token?client=x",service="ghcr.io"',
                    ["repository:a:pull", "repository:b:pull,push"])
    url = server.calls[0][0]
    assert url.startswith("https://ghcr.io/token?client=x&")
    assert server.query() == {"client": ["x"], "service": ["ghcr.io"],
                              "scope": ["repository:a:pull", "repository:b:pull,push"]}


def test_bearer_without_scope_uses_the_challenges_or_none():
    server = FakeTokenServer()
    a = Authenticator("docker.io", None, server)
    a.authorization(HUB_CHALLENGE, "")
    assert server.query()["scope"] == ["repository:library/alpine:pull"]
    a.authorization('Bearer realm="https://auth.docker.io/token",service="registry.docker.io"', "")
    assert "scope" not in server.query()
    a.authorization('Bearer realm="https://auth.example/t"', None)
    assert server.calls[-1][0] == "https://auth.example/t"


def test_token_cache_per_scope_and_expiry():
    clock = Clock()
    server = FakeTokenServer((200, {}, {"token": "t1", "expires_in": 300}),
                             (200, {}, {"token": "t2"}),
                             (200, {}, {"token": "t3", "expires_in": 300}),
                             (200, {}, {"token": "t4"}))
    a = Authenticator("docker.io", ("alice", SECRET), server, clock=clock)
    pull = "repository:library/alpine:pull"
    assert a.authorization(HUB_CHALLENGE, pull) == "Bearer t1"
    clock.now += 280
    assert a.authorization(HUB_CHALLENGE, pull) == "Bearer t1"
    assert len(server.calls) == 1
    assert a.authorization(HUB_CHALLENGE, "repository:other:pull") == "Bearer t2"  # another scope
    assert len(server.calls) == 2
    clock.now += 15  # 295 s: within the margin before expiry
    assert a.authorization(HUB_CHALLENGE, pull) == "Bearer t3"
    clock.now += 60  # t2 had the default 60 s lifetime
    assert a.authorization(HUB_CHALLENGE, "repository:other:pull") == "Bearer t4"
    assert a.authorization(HUB_CHALLENGE, pull) == "Bearer t3"
    a.forget()
    a.authorization(HUB_CHALLENGE, pull)
    assert len(server.calls) == 5


def test_scope_order_does_not_split_the_cache():
    server = FakeTokenServer()
    a = Authenticator("ghcr.io", None, server)
    a.authorization('Bearer realm="https://t"', ["repository:a:pull", "repository:b:pull"])
    a.authorization('Bearer realm="https://t"', ["repository:b:pull", "repository:a:pull"])
    assert len(server.calls) == 1


def test_token_server_refuses_credentials():
    server = FakeTokenServer((401, {}, b'{"details":"incorrect username or password"}'))
    a = Authenticator("registry-1.docker.io", ("alice", SECRET), server)
    with pytest.raises(Unauthorized) as e:
        a.authorization(HUB_CHALLENGE, "repository:library/alpine:pull")
    message = str(e.value)
    assert e.value.exit_code == 125 and isinstance(e.value, RootlessError)
    assert "unauthorized: the registry docker.io refused the credentials for alice" in message
    assert "rootless login docker.io" in message
    assert SECRET not in message and b64("alice:" + SECRET) not in message and "\n" not in message


def test_token_server_refuses_anonymous():
    a = Authenticator("quay.io", None, FakeTokenServer((401, {}, b"")))
    with pytest.raises(Unauthorized) as e:
        a.authorization('Bearer realm="https://quay.io/v2/auth",service="quay.io"', "repository:p/x:pull")
    assert "requires a login" in str(e.value) and "rootless login quay.io" in str(e.value)


@pytest.mark.parametrize("answer", [(500, {}, b"oops"), (200, {}, b"not json " + SECRET.encode()),
                                    (200, {}, b"[]"), (200, {}, b'{"token": ""}'),
                                    (200, {}, b'{"token": "a\\r\\nX-Evil: 1"}'), (200, {}, b'{"token": 5}')])
def test_token_server_bad_answers(answer):
    a = Authenticator("quay.io", ("alice", SECRET), FakeTokenServer(answer))
    with pytest.raises(RootlessError) as e:
        a.authorization('Bearer realm="https://quay.io/v2/auth"', "repository:p/x:pull")
    assert SECRET not in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("realm", ["file:///etc/passwd", "ftp://x/y", "", "https://", "/relative"])
def test_bad_realms_are_refused(realm):
    server = FakeTokenServer()
    with pytest.raises(RootlessError):
        Authenticator("quay.io", None, server).authorization('Bearer realm="%s"' % realm, "")
    assert server.calls == []


def test_credentials_go_to_a_plain_http_realm_only_when_insecure():
    server = FakeTokenServer()
    challenge = 'Bearer realm="http://auth.local/token"'
    with pytest.raises(RootlessError) as e:
        Authenticator("reg.local", ("alice", SECRET), server).authorization(challenge, "")
    assert "insecure-registries" in str(e.value) and SECRET not in str(e.value)
    assert server.calls == []
    assert Authenticator("reg.local", None, server).authorization(challenge, "") == "Bearer tok-1"
    assert Authenticator("reg.local", ("alice", SECRET), server, insecure=True).authorization(challenge, "") \
        == "Bearer tok-1"


def test_unknown_scheme_and_no_challenge():
    a = Authenticator("quay.io", ("alice", SECRET), FakeTokenServer())
    with pytest.raises(Unsupported):
        a.authorization('Negotiate abc==', "")
    assert a.authorization("", "x") is None


def test_no_secret_or_token_in_repr_or_debug():
    messages = []
    server = FakeTokenServer((200, {}, {"token": "the-token-value"}))
    a = Authenticator("docker.io", ("alice", SECRET), server, debug=messages.append)
    a.authorization(HUB_CHALLENGE, "repository:library/alpine:pull")
    shown = " ".join([repr(a), str(a), repr(a.credentials)] + messages)
    assert "alice" in repr(a) and messages and "alice" in messages[0]
    for secret in (SECRET, b64("alice:" + SECRET), "the-token-value"):
        assert secret not in shown
    assert a.credentials == ("alice", SECRET) and a.username == "alice"
    assert Authenticator("docker.io", None, server).credentials is None


def test_unauthorized_helper_messages():
    a = Authenticator("registry-1.docker.io", ("alice", SECRET), FakeTokenServer())
    e = a.unauthorized("repository:x:pull")
    assert isinstance(e, Unauthorized) and "alice" in str(e) and SECRET not in str(e)
    assert "rootless login docker.io" in str(Authenticator("docker.io", None, FakeTokenServer()).unauthorized())


# -- login / logout without the network -----------------------------------------------------------
# What needs a registry (checking and storing credentials, the HTTPS-then-HTTP fallback, the
# certificate hint) is tested against real ones in tests/integration/test_login.py.

def _no_network(url, *args, **kwargs):
    raise AssertionError("this test must not reach the network, but asked for %s" % url)


@pytest.fixture
def cli(env, monkeypatch):
    """Runs the login module's verbs in-process with ``env`` as the environment; any request
    to a registry fails the test."""
    for key in ("HOME", "XDG_CONFIG_HOME", "PATH"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setattr(regconfig, "http_get", _no_network)
    from rootless.cli import Context, login
    from rootless.cli.parser import Parser

    def run(*argv, stdin=""):
        parser = Parser(prog="rootless")
        login.register(parser.add_subparsers(dest="command", parser_class=Parser))
        args = parser.parse_args(list(argv))
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        return args.handler(Context(None, False, "info"), args)
    return run


def test_login_option_errors(cli, env):
    with pytest.raises(UsageError):
        cli("login", "-p", "x", "--password-stdin", "-u", "a", stdin="y")
    with pytest.raises(UsageError):
        cli("login", "--password-stdin", stdin="y")  # no user name
    with pytest.raises(UsageError):
        cli("login", "-u", "alice")  # stdin is not a terminal: cannot prompt
    with pytest.raises(UsageError):
        cli("login", "-u", "alice", "--password-stdin", stdin="\n")
    with pytest.raises(UsageError):
        cli("login", "--tls-verify=maybe", "-u", "a", "--password-stdin", stdin="x")
    assert not os.path.exists(auth_file(env))


def test_logout_when_not_logged_in(cli, env):
    with pytest.raises(NotFound) as e:
        cli("logout", "quay.io")
    assert str(e.value) == "not logged in to quay.io"
    write_docker_config(env, {"auths": {"quay.io": {"auth": b64("d:" + SECRET)}}})
    with pytest.raises(NotFound) as e:
        cli("logout", "quay.io")
    assert str(e.value).startswith("not logged in to quay.io") and "docker logout" in str(e.value)
    assert SECRET not in str(e.value)
