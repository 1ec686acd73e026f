"""The pure parts of inspect and info: a container's JSON from a hand-written record and
bundle, the lookup order and output of cli.inspect, the host facts info reads."""

import json

import pytest

from rootless import host
from rootless.bundle import create, spec
from rootless.cli import inspect as cli_inspect
from rootless.errors import Conflict, NotFound
from rootless.runtime import inspect
from rootless.units import binary_size

CID = "ab" * 32


def bundle(**over):
    s = spec.generate({"Env": ["PATH=/bin"], "Cmd": ["sh"]}, spec.RunOptions(hostname="h1"),
                      spec.User(0, 0, (), "root", "/root"), {})
    create.complete(s, "subuid", [], [], "overlay", ["/L/a/diff", "/L/b/diff"], init=False,
                    stop_signal="SIGTERM", owners=False)
    s.update(over)
    return s


def record(**over):
    r = {"id": CID, "name": "web", "created": 1700000000.25, "image": "busybox", "image_id": "sha256:" + "cd" * 32,
         "driver": "overlay", "command": ["sleep", "10"], "status": "created", "labels": {}}
    r.update(over)
    return r


def test_times_are_rfc3339_in_utc_and_zero_when_never():
    assert inspect.rfc3339_nano(1700000000.25) == "2023-11-14T22:13:20.25Z"
    assert inspect.rfc3339_nano(1700000000.0) == "2023-11-14T22:13:20Z"
    assert inspect.rfc3339_nano(1700000000.9999999) == "2023-11-14T22:13:21Z"
    assert inspect.rfc3339_nano(None) == inspect.ZERO_TIME == "0001-01-01T00:00:00Z"


def test_an_old_record_is_shown_from_its_bundle():
    obj = inspect.container_json(record(), bundle(), "/c/" + CID)
    assert obj["Name"] == "/web" and obj["Path"] == "sleep" and obj["Args"] == ["10"]
    assert obj["State"]["Status"] == "created" and obj["State"]["Pid"] == 0
    assert obj["State"]["StartedAt"] == inspect.ZERO_TIME
    assert obj["Config"]["Cmd"] == ["sleep", "10"] and obj["Config"]["Entrypoint"] is None
    assert obj["Config"]["Hostname"] == "h1" and obj["Config"]["Env"][0] == "PATH=/bin"
    assert obj["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert obj["HostConfig"]["CapAdd"] is None and obj["HostConfig"]["Dns"] == []
    assert obj["HostConfig"]["Privileged"] is False and obj["HostConfig"]["CgroupnsMode"] == "private"
    assert obj["HostsPath"] == "/c/%s/hosts" % CID and obj["LogPath"] == "/c/%s/%s-json.log" % (CID, CID)
    assert obj["GraphDriver"] == {"Name": "overlay", "Data": {
        "LowerDir": "/L/b/diff:/L/a/diff", "MergedDir": "/c/%s/merged" % CID,
        "UpperDir": "/c/%s/upper" % CID, "WorkDir": "/c/%s/work" % CID}}
    json.dumps(obj)  # plain JSON all through


def test_the_pid_only_while_it_runs():
    running = record(status="running", started=1700000001.0, pid=4242)
    assert inspect.container_json(running, bundle(), "/c", pid=4242)["State"]["Pid"] == 4242
    exited = record(status="exited", started=1700000001.0, finished=1700000002.5, exit_code=3)
    state = inspect.container_json(exited, bundle(), "/c", pid=4242)["State"]
    assert (state["Status"], state["Running"], state["Pid"], state["ExitCode"]) == ("exited", False, 0, 3)
    assert state["FinishedAt"] == "2023-11-14T22:13:22.5Z"
    restarting = inspect.container_json(record(status="restarting", started=1.0), bundle(), "/c")["State"]
    assert restarting["Running"] and restarting["Restarting"] and restarting["Status"] == "restarting"


def test_what_create_kept_is_what_is_shown():
    opts = create.CreateOptions("img", spec.RunOptions(args=("x",), env=("A=1", "HOME_ONLY"), labels={"l": "cli"},
                                                       cap_drop=("ALL",), read_only=True),
                                user="1000", interactive=True, dns=("1.1.1.1",), userns="keep-id", detach=True)
    image = {"Entrypoint": ["/ep"], "Cmd": ["default"], "Env": ["A=0", "B=2"], "Labels": {"l": "img", "m": "img"},
             "WorkingDir": "/w"}
    r = record(config=create.asked_config(image, opts, {"HOME_ONLY": "h"}), host_config=create.asked_host_config(opts),
               log={"driver": "none", "opts": {}}, restart={"name": "always", "maximum_retry_count": 0},
               stop_signal="SIGQUIT", init=True, auto_remove=False)
    obj = inspect.container_json(r, bundle(), "/c")
    c = obj["Config"]
    assert (c["Entrypoint"], c["Cmd"], c["User"], c["WorkingDir"]) == (["/ep"], ["x"], "1000", "/w")
    assert c["Env"] == ["A=1", "B=2", "HOME_ONLY=h"] and c["Labels"] == {"l": "cli", "m": "img"}
    assert (c["OpenStdin"], c["AttachStdin"], c["AttachStdout"], c["StdinOnce"]) == (True, False, False, False)
    assert c["StopSignal"] == "SIGQUIT"
    hc = obj["HostConfig"]
    assert hc["CapDrop"] == ["ALL"] and hc["CapAdd"] is None and hc["Dns"] == ["1.1.1.1"]
    assert hc["ReadonlyRootfs"] is True and hc["UsernsMode"] == "keep-id" and hc["Init"] is True
    assert hc["LogConfig"] == {"Type": "none", "Config": {}} and obj["LogPath"] == ""
    assert hc["RestartPolicy"]["Name"] == "always"


def test_ports_as_asked_and_as_published():
    from rootless.network import ports
    from rootless.runtime.config import Bundle
    opts = create.CreateOptions("img", spec.RunOptions(args=("x",), network="none"), publish_all=True,
                                ports=tuple(ports.parse_publish("8080:80") + ports.parse_publish("127.0.0.1::53/udp")),
                                expose=tuple(ports.parse_expose("9000")))
    image = {"Cmd": ["sh"], "ExposedPorts": {"443/tcp": {}, "80/tcp": {}}}
    exposed, published = create.ports_of(image, opts)
    assert exposed == ["53/udp", "80/tcp", "443/tcp", "9000/tcp"]
    assert published == list(opts.ports) + [ports.PortBinding("", 0, 443, "tcp"), ports.PortBinding("", 0, 9000, "tcp")]
    s = bundle()
    create.complete(s, "subuid", [], [], "overlay", [], init=False, stop_signal="SIGTERM", owners=False,
                    ports=published, exposed=exposed)
    loaded = Bundle("/c", s)
    assert loaded.ports == published and loaded.exposed == exposed
    assert Bundle("/c", bundle()).ports == [] and Bundle("/c", bundle()).exposed == []
    r = record(config=create.asked_config(image, opts, {}, exposed), host_config=create.asked_host_config(opts),
               network="none")
    obj = inspect.container_json(r, s, "/c")
    assert list(obj["Config"])[5:7] == ["AttachStderr", "ExposedPorts"]  # Docker's field order
    assert list(obj["Config"]["ExposedPorts"]) == ["443/tcp", "53/udp", "80/tcp", "9000/tcp"]
    assert obj["HostConfig"]["PortBindings"] == {"53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                                                 "80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert obj["HostConfig"]["PublishAllPorts"] is True
    assert obj["NetworkSettings"]["Ports"] == {}  # not running
    actual = [["", 8080, 80, "tcp"], ["127.0.0.1", 40001, 53, "udp"], ["", 40002, 443, "tcp"]]
    running = inspect.container_json(dict(r, status="running", started=1.0, ports=actual), s, "/c")
    assert running["NetworkSettings"]["Ports"] == {
        "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "40002"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "40001"}],
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "9000/tcp": None}
    # Nothing exposed, nothing asked: no ExposedPorts at all (Docker's omitempty).
    assert "ExposedPorts" not in inspect.container_json(record(config=create.asked_config(
        {"Cmd": ["sh"]}, create.CreateOptions("img", spec.RunOptions()), {})), bundle(), "/c")["Config"]


def test_the_host_network_discards_published_ports():
    from rootless.network import ports
    opts = create.CreateOptions("img", spec.RunOptions(network="host"), ports=tuple(ports.parse_publish("80")))
    assert create.ports_of({}, opts) == (["80/tcp"], [])
    r = record(status="running", started=1.0, host_config=create.asked_host_config(opts), network="host")
    obj = inspect.container_json(r, bundle(), "/c")
    assert obj["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": ""}]}  # kept as asked
    assert obj["NetworkSettings"]["Ports"] == {}


def test_copy_driver_and_sizes():
    obj = inspect.container_json(record(driver="copy"), bundle(), "/c", size=(10, 30))
    assert obj["GraphDriver"] == {"Name": "copy", "Data": {"MergedDir": "/c/rootfs", "UpperDir": "/c/rootfs"}}
    assert (obj["SizeRw"], obj["SizeRootFs"]) == (10, 30)
    keys = list(obj)
    assert keys.index("GraphDriver") < keys.index("SizeRw") < keys.index("Mounts")


def test_a_bundle_gone_still_gives_every_field():
    obj = inspect.container_json(record(), None, "/c")
    assert obj["ResolvConfPath"] == "" and obj["Config"]["Hostname"] == "" and obj["HostConfig"]["ShmSize"] == 64 << 20


# -- cli.inspect -------------------------------------------------------------------------------

def lookup(found):
    def find(ref):
        if ref == "ambiguous":
            raise Conflict("multiple containers match 'ambiguous': give more of the ID")
        if ref not in found:
            raise NotFound("No such thing: %s" % ref)
        return {"Id": found[ref]}
    return find


def test_containers_first_then_images_and_the_errors_after():
    containers, images = lookup({"web": "c1", "both": "c2"}), lookup({"busybox": "i1", "both": "i2"})
    objects, errors = cli_inspect.find_all(["both", "busybox", "nope", "ambiguous", "web"],
                                           [("container", containers), ("image", images)])
    assert [o["Id"] for o in objects] == ["c2", "i1", "c1"]
    assert errors == ["Error: No such object: nope", "rootless: error: multiple containers match "
                      "'ambiguous': give more of the ID"]
    _, errors = cli_inspect.find_all(["nope"], [("image", images)])
    assert errors == ["Error: No such image: nope"]


def test_output_is_dockers():
    objs = [{"Id": "a", "S": "<&>"}, {"Id": "b", "S": "é"}]
    assert cli_inspect.render_objects(objs, None) == json.dumps(objs, indent=4, ensure_ascii=False).replace(
        "<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"
    assert cli_inspect.render_objects(objs, "json") == '[{"Id":"a","S":"\\u003c\\u0026\\u003e"},{"Id":"b","S":"é"}]\n'
    assert cli_inspect.render_objects(objs, "{{.Id}}") == "a\nb\n"
    assert cli_inspect.render_objects([], "{{.Id}}") == "\n" and cli_inspect.render_objects([], None) == "[]\n"


def test_type_names():
    assert cli_inspect.kinds_of(None) == ("container", "image")
    assert cli_inspect.kinds_of("image") == ("image",)
    with pytest.raises(Exception, match='unknown type: "frob"'):
        cli_inspect.kinds_of("frob")
    with pytest.raises(Exception, match="no volumes"):
        cli_inspect.kinds_of("volume")


# -- host facts ----------------------------------------------------------------------------------

def test_os_release_and_units(tmp_path):
    path = tmp_path / "os-release"
    path.write_text('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID=\'12\'\n# c\n')
    release = host.os_release(str(path))
    assert release["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)" and release["VERSION_ID"] == "12"
    assert host.os_release(str(tmp_path / "none")) == {}
    assert binary_size(25201033216) == "23.47GiB" and binary_size(512) == "512B" and binary_size(1536) == "1.5KiB"
    assert host.backing_fs("ext4") == "extfs" and host.backing_fs("xfs") == "xfs"


def test_engine_id_is_made_once_and_kept(tmp_path):
    first = host.engine_id(str(tmp_path))
    assert len(first) == 36 and first[14] == "4" and host.engine_id(str(tmp_path)) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["engine-id"]
    assert host.engine_id(str(tmp_path / "missing")) == ""


def test_security_options():
    assert host.security_options("single-uid")[0] == "name=seccomp,profile=builtin"
    assert "name=rootless" in host.security_options("subuid")
    assert not any("seccomp" in o for o in host.security_options("subuid"))
