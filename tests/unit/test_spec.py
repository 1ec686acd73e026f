"""Bundle generation: Docker's semantics for command, env, workdir, user and caps."""

import pytest

from rootless.bundle import spec, users
from rootless.bundle.spec import RunOptions
from rootless.errors import UsageError

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
broken line
"""
GROUP = """root:x:0:
wheel:x:10:alice,bob
video:x:44:alice
alice:x:1000:
"""


@pytest.mark.parametrize("image,opts,expected", [
    ({"Cmd": ["sh"]}, RunOptions(), ["sh"]),
    ({"Cmd": ["sh"]}, RunOptions(args=("echo", "hi")), ["echo", "hi"]),
    ({"Entrypoint": ["/init"], "Cmd": ["--serve"]}, RunOptions(), ["/init", "--serve"]),
    ({"Entrypoint": ["/init"], "Cmd": ["--serve"]}, RunOptions(args=("x",)), ["/init", "x"]),
    ({"Entrypoint": ["/init"], "Cmd": ["--serve"]}, RunOptions(entrypoint="/bin/sh"), ["/bin/sh"]),
    ({"Entrypoint": ["/init"], "Cmd": ["c"]}, RunOptions(entrypoint="", args=("ls",)), ["ls"]),
])
def test_command(image, opts, expected):
    assert spec.command(image, opts) == expected


def test_no_command_is_an_error():
    with pytest.raises(UsageError, match="no command"):
        spec.command({}, RunOptions())


def test_environment_merge_order_and_defaults():
    user = users.resolve(None, PASSWD, GROUP)
    env = spec.environment({"Env": ["A=image", "B=image"]},
                           RunOptions(env=("B=cli", "C=1", "FROMHOST", "MISSING"), hostname="abc", tty=True),
                           user, {"FROMHOST": "h"})
    d = dict(e.split("=", 1) for e in env)
    assert d["A"] == "image" and d["B"] == "cli" and d["C"] == "1" and d["FROMHOST"] == "h"
    assert "MISSING" not in d
    assert d["PATH"] == spec.DEFAULT_PATH and d["HOSTNAME"] == "abc" and d["TERM"] == "xterm"
    assert d["HOME"] == "/root"


def test_a_trailing_star_passes_the_host_variables_of_that_prefix():
    """podman's rule, for a Slurm job's variables: ``-e 'SLURM_*'``; an explicit value or
    a later flag still wins, and nothing of another prefix comes along."""
    user = users.resolve(None, PASSWD, GROUP)
    host = {"SLURM_JOB_ID": "42", "SLURM_PROCID": "1", "SLURMD_NODENAME": "n1", "HOME": "/home/u", "XSLURM_X": "no"}
    env = spec.environment({"Env": ["SLURM_PROCID=image"]},
                           RunOptions(env=("SLURM_*", "SLURM_JOB_ID=mine")), user, host)
    d = dict(e.split("=", 1) for e in env)
    assert (d["SLURM_JOB_ID"], d["SLURM_PROCID"]) == ("mine", "1")
    assert "SLURMD_NODENAME" not in d and "XSLURM_X" not in d and d["HOME"] == "/root"
    everything = dict(e.split("=", 1) for e in spec.environment({}, RunOptions(env=("*",)), user, host))
    assert everything["HOME"] == "/home/u" and everything["XSLURM_X"] == "no"
    with pytest.raises(UsageError, match="invalid environment variable"):
        spec.environment({}, RunOptions(env=("=x",)), user, host)


def test_working_dir():
    assert spec.working_dir({}, RunOptions()) == "/"
    assert spec.working_dir({"WorkingDir": "/app"}, RunOptions()) == "/app"
    assert spec.working_dir({"WorkingDir": "/app"}, RunOptions(workdir="/tmp")) == "/tmp"
    with pytest.raises(UsageError):
        spec.working_dir({}, RunOptions(workdir="rel"))


def test_users_resolve_like_docker():
    assert users.resolve(None, PASSWD, GROUP) == users.User(0, 0, (), "root", "/root")
    alice = users.resolve("alice", PASSWD, GROUP)
    assert (alice.uid, alice.gid, alice.additional_gids, alice.home) == (1000, 1000, (10, 44), "/home/alice")
    assert users.resolve("1000:44", PASSWD, GROUP).additional_gids == ()
    assert users.resolve("1000:video", PASSWD, GROUP).gid == 44
    unknown = users.resolve("4242", PASSWD, GROUP)
    assert (unknown.uid, unknown.gid, unknown.name) == (4242, 0, "")
    with pytest.raises(UsageError, match="unable to find user"):
        users.resolve("mallory", PASSWD, GROUP)
    with pytest.raises(UsageError, match="unable to find group"):
        users.resolve("alice:nogroup", PASSWD, GROUP)


def test_capabilities():
    assert spec.capabilities(RunOptions()) == list(spec.DEFAULT_CAPS)
    caps = spec.capabilities(RunOptions(cap_add=("sys_admin",), cap_drop=("NET_RAW", "CAP_KILL")))
    assert "CAP_SYS_ADMIN" in caps and "CAP_NET_RAW" not in caps and "CAP_KILL" not in caps
    assert spec.capabilities(RunOptions(cap_drop=("ALL",), cap_add=("chown",))) == ["CAP_CHOWN"]
    assert set(spec.capabilities(RunOptions(privileged=True))) == set(spec.ALL_CAPS)
    with pytest.raises(UsageError, match="unknown capability"):
        spec.capabilities(RunOptions(cap_add=("FLY",)))


def test_generate_is_a_runtime_spec():
    user = users.resolve("alice", PASSWD, GROUP)
    cfg = spec.generate({"Cmd": ["sh"], "StopSignal": "SIGQUIT"},
                        RunOptions(hostname="c0ffee", labels={"a": "b"}), user)
    assert cfg["ociVersion"] == spec.OCI_VERSION
    assert cfg["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10, 44]}
    assert cfg["process"]["args"] == ["sh"] and cfg["process"]["noNewPrivileges"] is True
    assert cfg["hostname"] == "c0ffee" and cfg["root"] == {"path": "rootfs", "readonly": False}
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"]
    assert "/proc/sys" in cfg["linux"]["readonlyPaths"]
    assert [m["destination"] for m in cfg["mounts"]][:2] == ["/proc", "/dev"]
    assert cfg["annotations"]["org.opencontainers.image.stopSignal"] == "SIGQUIT"
    assert cfg["annotations"]["label.a"] == "b"
    privileged = spec.generate({"Cmd": ["sh"]}, RunOptions(privileged=True), user)
    assert privileged["linux"]["maskedPaths"] == [] and privileged["process"]["noNewPrivileges"] is False


def test_stop_signal_names_a_signal_as_docker_checks_it():
    for name in ("SIGTERM", "usr1", "15", "RTMIN+3", "SIGRTMAX-2"):
        assert spec.stop_signal(name) == name  # kept as given
    for name in ("SIGNOPE", "0", "65", "RTMIN+99", "SIG_DFL", "TERM "):
        with pytest.raises(UsageError):
            spec.stop_signal(name)
