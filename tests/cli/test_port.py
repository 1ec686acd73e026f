"""Published ports through the command line: ``create -p/-P/--expose``, what ``inspect``,
``ps`` and ``port`` show of them, and refused values (the built zipapp, as a user runs it).

No container runs here. A created container has no bindings (Docker shows none); a
"running" one is a created container marked running, its "monitor" a process of ours,
with the bindings the runtime would have made written into its record (``ports``), so
the surfaces are tested before and apart from the forwarder.
"""

import json
import os
import re
import subprocess

import pytest

from conftest import loaded_root
from rootless import paths
from rootless.runtime import state
from rootless.runtime.config import EXPOSED, PORTS


@pytest.fixture(scope="module")
def prl(tmp_path_factory, test_images):
    setup = loaded_root(tmp_path_factory, test_images, "port")
    root = next(setup)
    # An image with EXPOSE, as a Dockerfile makes one: -P publishes its ports.
    root("create", "--name", "base", "busybox", "true")
    root("commit", "--change", "EXPOSE 443 53/udp", "base", "exposing:1")
    yield root
    next(setup, None)


def containers(prl):
    return state.Containers(paths.resolve(prl.root))


def inspect(prl, name):
    return json.loads(prl.out("inspect", name))[0]


def bundle_annotations(prl, name):
    c = containers(prl)
    with open(os.path.join(c.dir(c.find(name)["id"]), "config.json")) as f:
        return json.load(f)["annotations"]


def ids(prl):
    return prl.out("ps", "-aq", "--no-trunc").split()


def test_create_keeps_what_was_asked(prl):
    cid = prl.out("create", "--name", "web", "--network", "none", "-p", "8080:80", "-p", "127.0.0.1::53/udp",
                  "--publish", "8000-8001:8000-8001", "--expose", "9000-9001", "-P", "exposing:1", "true").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    obj = inspect(prl, "web")
    assert obj["HostConfig"]["PortBindings"] == {
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
        "8000/tcp": [{"HostIp": "", "HostPort": "8000"}], "8001/tcp": [{"HostIp": "", "HostPort": "8001"}],
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert obj["HostConfig"]["PublishAllPorts"] is True
    assert list(obj["Config"]["ExposedPorts"]) == ["443/tcp", "53/udp", "80/tcp", "8000/tcp", "8001/tcp",
                                                   "9000/tcp", "9001/tcp"]  # as Go sorts map keys
    assert obj["NetworkSettings"]["Ports"] == {}  # created: nothing published yet
    notes = bundle_annotations(prl, "web")
    assert json.loads(notes[EXPOSED]) == ["53/udp", "80/tcp", "443/tcp", "8000/tcp", "8001/tcp", "9000/tcp",
                                          "9001/tcp"]
    # What the runtime listens on: the -p bindings, then -P's for the exposed ports no -p binds.
    assert json.loads(notes[PORTS]) == [
        ["", 8080, 80, "tcp"], ["127.0.0.1", 0, 53, "udp"], ["", 8000, 8000, "tcp"], ["", 8001, 8001, "tcp"],
        ["", 0, 443, "tcp"], ["", 0, 9000, "tcp"], ["", 0, 9001, "tcp"]]


def test_a_created_container_shows_no_ports(prl):
    prl("create", "--name", "quiet", "--network", "none", "-p", "8081:80", "busybox", "true")
    assert prl.out("ps", "-a", "-f", "name=quiet", "--format", "{{.Names}}|{{.Ports}}|") == "quiet||\n"
    table = prl.out("ps", "-a", "-f", "name=quiet").splitlines()
    assert "PORTS" in table[0] and re.search(r"Created\s+quiet$", table[1]), table
    proc = prl("port", "quiet")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    proc = prl("port", "quiet", "80", check=False)
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr.decode() == "rootless: error: No public port '80' published for quiet\n"
    proc = prl("container", "port", "quiet", "80/udp", check=False)
    assert proc.returncode == 1 and "No public port '80/udp' published for quiet" in proc.stderr.decode()
    proc = prl("port", "quiet", "http", check=False)
    assert proc.returncode == 125 and proc.stderr.decode().startswith("rootless: error: invalid port (http)")
    proc = prl("port", "nobody", check=False)
    assert proc.returncode == 125 and "No such container: nobody" in proc.stderr.decode()


@pytest.fixture
def running(prl):
    """``live``: created with -p and EXPOSE, marked running with the runtime's bindings."""
    prl("create", "--name", "live", "--network", "none", "-p", "8082:80", "-p", "[::1]:9053:53/udp",
        "-P", "exposing:1", "true")
    monitor = subprocess.Popen(["sleep", "300"])
    actual = [["", 8082, 80, "tcp"], ["::1", 9053, 53, "udp"], ["", 40443, 443, "tcp"]]

    def run(r):
        r = state.begin_run(r, {"pid": monitor.pid, "start": state.process_start_time(monitor.pid)})
        r.update(ports=actual, network="none")
        return r
    try:
        containers(prl).update(containers(prl).find("live")["id"], run)
        yield "live"
    finally:
        monitor.kill()
        monitor.wait()
        prl("rm", "-f", "live", check=False)


def test_a_running_container_shows_its_bindings(prl, running):
    assert prl.out("ps", "-f", "name=live", "--format", "{{.Ports}}") == \
        "[::1]:9053->53/udp, 0.0.0.0:8082->80/tcp, 0.0.0.0:40443->443/tcp\n"
    assert prl.out("port", "live") == "53/udp -> [::1]:9053\n80/tcp -> 0.0.0.0:8082\n443/tcp -> 0.0.0.0:40443\n"
    assert prl.out("port", "live", "80") == "0.0.0.0:8082\n"
    assert prl.out("port", "live", "53/udp") == "[::1]:9053\n"
    assert prl("port", "live", "53", check=False).returncode == 1  # 53/tcp is not published
    assert inspect(prl, "live")["NetworkSettings"]["Ports"] == {
        "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "40443"}], "53/udp": [{"HostIp": "::1", "HostPort": "9053"}],
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8082"}]}
    assert prl.out("ps", "-f", "publish=80", "--format", "{{.Names}}") == "live\n"
    assert prl.out("ps", "-f", "publish=443", "--format", "{{.Names}}") == ""  # -P's: not in PortBindings
    assert prl.out("ps", "-f", "expose=443", "--format", "{{.Names}}") == "live\n"


@pytest.mark.parametrize("value, message", [
    ("8080:", "no port specified: 8080:<empty>"),
    ("0", "invalid containerPort: 0"),
    ("8080:70000", "invalid containerPort: 70000"),
    ("8000-8001:80-82", "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"),
    ("example.com:80:80", "invalid IP address: example.com"),
    ("80/sctp", "sctp ports are not supported"),
])
def test_a_bad_publish_value_makes_nothing(prl, value, message):
    before = ids(prl)
    for verb in ("create", "run"):
        proc = prl(verb, "-p", value, "busybox", "true", check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 125 and proc.stdout == b"", (verb, err)
        assert err.startswith("rootless: error: ") and message in err and len(err.splitlines()) == 1, err
    assert ids(prl) == before
    # The value is refused before the image is even looked for.
    proc = prl("create", "--pull", "never", "-p", value, "no-such-image", check=False)
    assert proc.returncode == 125 and message in proc.stderr.decode()


def test_bad_expose_values(prl):
    proc = prl("create", "--expose", "80:80", "busybox", check=False)
    assert proc.returncode == 125 and "invalid port format for --expose: 80:80" in proc.stderr.decode()
    proc = prl("create", "--expose", "x", "busybox", check=False)
    assert proc.returncode == 125 and "invalid range format for --expose: x" in proc.stderr.decode()


def test_the_host_network_discards_published_ports(prl):
    proc = prl("create", "--name", "onhost", "--network", "host", "-p", "8083:80", "busybox", "true")
    assert proc.stderr.decode() == "WARNING: Published ports are discarded when using host network mode\n"
    assert PORTS not in bundle_annotations(prl, "onhost")
    assert inspect(prl, "onhost")["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8083"}]}
    # -P alone asks for no binding, so Docker says nothing.
    proc = prl("create", "--name", "onhost-all", "--network", "host", "-P", "exposing:1", "true")
    assert proc.stderr == b"" and PORTS not in bundle_annotations(prl, "onhost-all")


def test_help_names_the_flags(prl):
    text = prl.out("run", "--help")
    assert "--publish" in text and "--publish-all" in text and "--expose" in text
    assert "PRIVATE_PORT[/PROTO]" in prl.out("port", "--help")
