"""`inspect` (containers, images, both), `container inspect`, `image inspect` and `info`, on
real containers as the unprivileged test users.

The module has its own storage root and run dir (its own monitor, as test_detached.py).
What inspect says is checked against the kernel and the files: the pid it gives is a
live process in another pid namespace, the paths it names exist, the counts of `info`
are those of `ps -a`.
"""

import json
import os
import re

import pytest

from test_detached import detached_root, end_what_is_left, run_d
from test_run import busybox_with, settled

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z\Z")
ZERO_TIME = "0001-01-01T00:00:00Z"
TOP_KEYS = ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath",
            "HostsPath", "LogPath", "Name", "RestartCount", "Driver", "Platform", "MountLabel",
            "ProcessLabel", "AppArmorProfile", "ExecIDs", "HostConfig", "GraphDriver", "Mounts",
            "Config", "NetworkSettings"]
STATE_TYPES = {"Status": str, "Running": bool, "Paused": bool, "Restarting": bool, "OOMKilled": bool,
               "Dead": bool, "Pid": int, "ExitCode": int, "Error": str, "StartedAt": str, "FinishedAt": str}
CONFIG_KEYS = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty",
               "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir", "Entrypoint",
               "OnBuild", "Labels"]


@pytest.fixture(scope="module")
def irl(tmp_path_factory, test_images):
    yield from detached_root(tmp_path_factory, test_images, "inspect")


@pytest.fixture(autouse=True)
def nothing_outlives_its_test(irl):
    yield
    end_what_is_left(irl)


def inspect(irl, *args) -> list:
    return json.loads(irl.out("inspect", *args))


def field(irl, template: str, *names) -> list:
    return irl.out("inspect", "-f", template, *names).splitlines()


def image_id(irl, name="busybox") -> str:
    return json.loads(irl.out("image", "inspect", name))[0]["Id"]


def proc_state(pid: int) -> str:
    with open("/proc/%d/status" % pid) as f:
        return next(line.split()[1] for line in f if line.startswith("State:"))


# -- a running container ------------------------------------------------------------------------

def test_a_running_container_in_dockers_shape(irl):
    cid = run_d(irl, "--name", "web", "-l", "team=infra", "--cap-add", "NET_ADMIN", "--dns", "10.0.0.9",
                "--add-host", "db:10.0.0.5", "--restart", "on-failure:3", "busybox", "sleep", "300")
    objs = inspect(irl, "web")
    assert len(objs) == 1
    obj = objs[0]
    assert list(obj) == TOP_KEYS
    assert obj["Id"] == cid and obj["Name"] == "/web" and obj["Platform"] == "linux"
    assert RFC3339.match(obj["Created"]), obj["Created"]
    assert (obj["Path"], obj["Args"]) == ("sleep", ["300"])
    assert obj["Image"] == image_id(irl) and obj["Config"]["Image"] == "busybox"
    state = obj["State"]
    assert {k: type(v) for k, v in state.items()} == STATE_TYPES
    assert state["Status"] == "running" and state["Running"] and not state["Paused"] and state["Pid"] > 0
    assert RFC3339.match(state["StartedAt"]) and state["FinishedAt"] == ZERO_TIME and state["ExitCode"] == 0
    cdir = os.path.join(irl.root, "containers", cid)
    for key, name in (("ResolvConfPath", "resolv.conf"), ("HostnamePath", "hostname"), ("HostsPath", "hosts")):
        assert obj[key] == os.path.join(cdir, name) and os.path.isfile(obj[key])
    assert "10.0.0.9" in open(obj["ResolvConfPath"]).read()
    assert obj["LogPath"] == os.path.join(cdir, cid + "-json.log") and os.path.isfile(obj["LogPath"])
    assert obj["RestartCount"] == 0 and obj["ExecIDs"] is None and obj["Mounts"] == []

    hc = obj["HostConfig"]
    default = irl.out("info", "--format", "{{.Network.Default}}").strip()  # slirp4netns in CI
    assert hc["NetworkMode"] == default and hc["PortBindings"] == {} and hc["Binds"] is None
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] is None
    assert hc["Dns"] == ["10.0.0.9"] and hc["DnsSearch"] == [] and hc["ExtraHosts"] == ["db:10.0.0.5"]
    assert hc["AutoRemove"] is False and hc["Privileged"] is False and hc["ReadonlyRootfs"] is False
    assert hc["Memory"] == 0 and hc["NanoCpus"] == 0 and hc["ShmSize"] == 64 << 20
    assert hc["IpcMode"] == "private" and hc["PidMode"] == "" and hc["UsernsMode"] == ""
    assert "/proc/kcore" in hc["MaskedPaths"] and "Init" not in hc

    graph = obj["GraphDriver"]
    assert graph["Name"] == obj["Driver"] in ("overlay", "fuse-overlayfs", "copy")
    for key in ("UpperDir", "MergedDir"):
        assert os.path.isdir(graph["Data"][key]) and graph["Data"][key].startswith(cdir)
    if graph["Name"] != "copy":
        assert all(os.path.isdir(d) for d in graph["Data"]["LowerDir"].split(":"))

    config = obj["Config"]
    assert list(config) == CONFIG_KEYS
    assert config["Cmd"] == ["sleep", "300"] and config["Entrypoint"] is None
    assert config["Hostname"] == cid[:12] and config["Labels"] == {"team": "infra"}
    assert any(e.startswith("PATH=") for e in config["Env"]) and config["Tty"] is False
    assert (config["AttachStdout"], config["OpenStdin"]) == (False, False)  # -d, no -i
    net = obj["NetworkSettings"]
    assert net["Ports"] == {} and net["Bridge"] == "" and list(net["Networks"]) == [default]
    address = "10.0.2.100" if default == "slirp4netns" else ""  # pasta's: the host's, not known outside
    assert net["IPAddress"] == address and net["Networks"][default]["IPAddress"] == address
    assert net["Networks"][default]["Aliases"] is None


def test_the_pid_is_the_host_pid_of_the_first_process(irl):
    run_d(irl, "--name", "pid1", "busybox", "sleep", "301")
    (pid,) = field(irl, "{{.State.Pid}}", "pid1")
    pid = int(pid)
    assert proc_state(pid) in ("S", "R")  # alive, not a zombie
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"301"]
    assert os.readlink("/proc/%d/ns/pid" % pid) != os.readlink("/proc/self/ns/pid")
    with open("/proc/%d/status" % pid) as f:
        nspid = next(line.split()[1:] for line in f if line.startswith("NSpid:"))
    assert nspid[-1] == "1"  # pid 1 of its own pid namespace: what nsenter -t enters


def test_after_stop_it_is_exited_with_its_code(irl):
    run_d(irl, "--name", "trapper", "busybox", "sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done")
    irl("stop", "trapper")
    status, code, pid, running, finished = field(
        irl, "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}} {{.State.Running}} {{.State.FinishedAt}}",
        "trapper")[0].split()
    assert (status, code, pid, running) == ("exited", "3", "0", "false")
    assert RFC3339.match(finished) and finished != ZERO_TIME


def test_created_container_never_started(irl):
    cid = irl.out("create", "--name", "fresh", "-i", "--log-driver", "none", "--init", "busybox", "true").strip()
    obj = inspect(irl, cid)[0]
    assert obj["State"]["Status"] == "created" and obj["State"]["Pid"] == 0
    assert obj["State"]["StartedAt"] == ZERO_TIME == obj["State"]["FinishedAt"]
    assert obj["LogPath"] == "" and obj["HostConfig"]["LogConfig"]["Type"] == "none"
    assert obj["HostConfig"]["Init"] is True
    assert (obj["Config"]["OpenStdin"], obj["Config"]["AttachStdin"], obj["Config"]["AttachStdout"]) == (True, True, True)


def test_entrypoint_and_cmd_apart_and_image_labels(irl, test_images, tmp_path):
    archive = busybox_with(test_images, str(tmp_path / "ep.tar"), "ep:1", Entrypoint=["echo", "ep"],
                           Cmd=["default"], Labels={"from": "image"}, WorkingDir="/tmp")
    irl("load", "-i", archive)
    irl("create", "--name", "ep-default", "ep:1")
    irl("create", "--name", "ep-args", "-l", "from=cli", "-w", "/", "ep:1", "given")
    irl("create", "--name", "ep-none", "--entrypoint", "", "ep:1", "sh")
    config = {o["Name"]: o["Config"] for o in inspect(irl, "ep-default", "ep-args", "ep-none")}
    assert (config["/ep-default"]["Entrypoint"], config["/ep-default"]["Cmd"]) == (["echo", "ep"], ["default"])
    assert config["/ep-default"]["Labels"] == {"from": "image"} and config["/ep-default"]["WorkingDir"] == "/tmp"
    assert (config["/ep-args"]["Entrypoint"], config["/ep-args"]["Cmd"]) == (["echo", "ep"], ["given"])
    assert config["/ep-args"]["Labels"] == {"from": "cli"} and config["/ep-args"]["WorkingDir"] == "/"
    assert (config["/ep-none"]["Entrypoint"], config["/ep-none"]["Cmd"]) == (None, ["sh"])
    assert [o["Path"] for o in inspect(irl, "ep-default", "ep-none")] == ["echo", "sh"]
    irl("rm", "ep-default", "ep-args", "ep-none")
    irl("rmi", "ep:1")


# -- names, types and what is not there -----------------------------------------------------------

def test_by_name_id_prefix_and_full_id(irl):
    cid = run_d(irl, "--name", "named", "busybox", "sleep", "302")
    assert field(irl, "{{.Id}}", "named", "/named", cid[:7], cid) == [cid] * 4
    assert irl.out("container", "inspect", "-f", "{{.Name}}", cid[:5]) == "/named\n"


def test_containers_and_images_mixed_and_a_missing_name(irl):
    cid = run_d(irl, "--name", "mixed", "busybox", "sleep", "303")
    proc = irl("inspect", "-f", "{{.Id}}", "mixed", "busybox", "nothing-here", check=False)
    assert proc.returncode == 1
    assert proc.stdout.decode().splitlines() == [cid, image_id(irl)]
    assert proc.stderr.decode() == "Error: No such object: nothing-here\n"
    proc = irl("inspect", "nothing-here", "mixed", check=False)
    assert proc.returncode == 1 and [o["Id"] for o in json.loads(proc.stdout)] == [cid]
    proc = irl("inspect", "nothing-here", check=False)
    assert proc.returncode == 1 and proc.stdout == b"[]\n"
    compact = irl.out("inspect", "-f", "json", "mixed", "busybox")
    assert "\n" not in compact.strip() and [o["Id"] for o in json.loads(compact)] == [cid, image_id(irl)]


def test_type_keeps_one_kind(irl):
    run_d(irl, "--name", "busybox", "busybox", "sleep", "304")  # a container named like the image
    assert field(irl, "{{.Name}}", "busybox") == ["/busybox"]  # containers first, as Docker
    assert field(irl, "{{.Id}}", "--type", "image", "busybox") == [image_id(irl)]
    assert field(irl, "{{.Name}}", "--type", "container", "busybox") == ["/busybox"]
    proc = irl("inspect", "--type", "image", "no-such-image", check=False)
    assert proc.returncode == 1 and proc.stderr.decode() == "Error: No such image: no-such-image\n"
    proc = irl("container", "inspect", "no-such-thing", check=False)
    assert proc.returncode == 1 and proc.stderr.decode() == "Error: No such container: no-such-thing\n"
    proc = irl("image", "inspect", "-f", "{{.Id}}", "busybox", "no-such-image", check=False)
    assert proc.returncode == 1 and proc.stdout.decode() == image_id(irl) + "\n"
    assert proc.stderr.decode() == "Error: No such image: no-such-image\n"
    proc = irl("inspect", "--type", "frob", "busybox", check=False)
    assert proc.returncode == 125 and 'unknown type: "frob"' in proc.stderr.decode()


def test_size_of_the_writable_layer(irl):
    run_d(irl, "--name", "writer", "busybox", "sh", "-c", "head -c 50000 /dev/zero > /written; sleep 305")
    assert settled(lambda: field(irl, "{{.SizeRw}}", "-s", "writer")[0], until=lambda v: int(v) >= 50000)
    rw, rootfs = (int(v) for v in field(irl, "{{.SizeRw}} {{.SizeRootFs}}", "--size", "writer")[0].split())
    assert rw >= 50000 and rootfs > rw
    assert "SizeRw" not in inspect(irl, "writer")[0]
    proc = irl("inspect", "-s", "-f", "{{.Id}}", "--type", "image", "busybox")
    assert proc.stderr.decode() == "WARNING: --size ignored for image\n"


def test_templates_on_nested_fields(irl):
    run_d(irl, "--name", "tmpl", "--restart", "always", "busybox", "sleep", "306")
    assert field(irl, "{{.HostConfig.RestartPolicy.Name}}", "tmpl") == ["always"]
    assert json.loads(field(irl, "{{json .Config}}", "tmpl")[0])["Cmd"] == ["sleep", "306"]
    default = irl.out("info", "--format", "{{.Network.Default}}").strip()
    assert json.loads(field(irl, "{{json .NetworkSettings.Networks}}", "tmpl")[0]).keys() == {default}


# -- info ----------------------------------------------------------------------------------------

def test_info_counts_what_ps_shows(irl):
    run_d(irl, "--name", "up", "busybox", "sleep", "307")
    irl("create", "--name", "made", "busybox", "true")
    irl("run", "--name", "ran", "busybox", "true")
    info = json.loads(irl.out("info", "-f", "{{json .}}"))
    assert (info["Containers"], info["ContainersRunning"], info["ContainersPaused"], info["ContainersStopped"]) == (3, 1, 0, 2)
    assert info["Images"] == len(irl.out("images", "-q").split()) == 1
    assert info["Driver"] == info["Probes"]["rootfs"]["choice"] and info["DockerRootDir"] == irl.root
    assert info["StorageRoot"] == irl.root and info["OSType"] == "linux" and info["NCPU"] >= 1
    assert info["MemTotal"] > 0 and info["CgroupVersion"] in ("1", "2") and info["CgroupDriver"] in ("none", "cgroupfs", "systemd")
    assert "name=rootless" in info["SecurityOptions"] and isinstance(info["Warnings"], list)
    assert info["ID"] == json.loads(irl.out("info", "-f", "json"))["ID"] != ""  # kept, not made anew
    assert irl.out("info", "-f", "{{.ContainersRunning}} {{.ContainersStopped}}") == "1 2\n"
    proc = irl("info")
    text = proc.stdout.decode()
    lines = text.splitlines()
    assert lines[0] == "Client:" and "Server:" in lines and "Rootless:" in lines
    for line in (" Containers: 3", "  Running: 1", "  Paused: 0", "  Stopped: 2", " Images: 1",
                 " Storage Driver: " + info["Driver"], " Logging Driver: json-file",
                 " Docker Root Dir: " + irl.root, " Storage root: " + irl.root):
        assert line in lines, (line, text)
    assert proc.stderr.decode() == "".join(w + "\n" for w in info["Warnings"])
