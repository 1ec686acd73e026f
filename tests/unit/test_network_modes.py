"""network.modes: the --network values, the sysctls a container may set, the ping range."""

import pytest

from rootless.errors import UsageError
from rootless.network import modes


def test_parse_gives_each_mode_and_refuses_user_defined_networks():
    assert modes.parse("").kind == "" and modes.parse("bridge").kind == ""
    assert modes.parse("none").kind == "none" and modes.parse("host").kind == "host"
    assert modes.parse("slirp4netns:allow_host_loopback=true").options == {"allow_host_loopback": "true"}
    assert modes.parse("pasta:-t,8080").options == {"args": ["-t", "8080"]}
    mode = modes.parse("container:web")
    assert (mode.kind, mode.container) == ("container", "web")
    for bad in ("mynet", "container:", "slirp4netns:nokey", "host:x"):
        with pytest.raises(UsageError):
            modes.parse(bad)


def test_ping_range_runs_between_mapped_groups():
    subuid = [{"containerID": 0, "hostID": 1000, "size": 1}, {"containerID": 1, "hostID": 100000, "size": 65536}]
    assert modes.ping_groups(subuid) == "0 65536"
    assert modes.ping_groups([{"containerID": 0, "hostID": 1000, "size": 1}]) == "0 0"
    assert modes.ping_groups([{"containerID": 1000, "hostID": 1000, "size": 1}]) == "1000 1000"  # keep-id


def test_sysctls_of_the_containers_own_namespaces_only():
    one = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert modes.sysctls(["net.ipv4.ip_forward=1"], "none", one) == {
        "net.ipv4.ip_forward": "1", modes.PING_GROUPS: "0 0"}
    assert modes.sysctls(["kernel.shmmni=10"], "host", one) == {"kernel.shmmni": "10"}
    for item, kind in (("net.ipv4.ip_forward=1", "host"), ("net.ipv4.ip_forward=1", "container"),
                       ("kernel.hostname=x", "none"), ("net/../x=1", "none"), ("net.x", "none")):
        with pytest.raises(UsageError):
            modes.sysctls([item], kind, one)


def test_without_root_the_default_leaves_slirp4netns_and_an_explicit_one_is_refused():
    chosen = modes.Mode("slirp4netns")
    chosen.default = True
    mode, notice = modes.without_root(chosen)
    assert mode.kind in ("pasta", "host") and (notice == "") == (mode.kind == "pasta")
    with pytest.raises(UsageError):
        modes.without_root(modes.Mode("slirp4netns"))
    assert modes.without_root(modes.Mode("pasta"))[0].kind == "pasta"
