"""rootless.network.helper without starting anything: the helpers' command lines built
from ``--network MODE:...`` options, the refusals, the resolver address, and which of a
helper's stderr lines is its reason. (test_network_helper.py in integration starts them.)"""

import pytest

from rootless.errors import RootlessError, UsageError
from rootless.network import helper


# -- slirp4netns ----------------------------------------------------------------------------

def test_slirp4netns_defaults():
    assert helper.slirp4netns_args({}, 1234, ready_fd=5, exit_fd=6) == [
        "--configure", "--mtu=65520", "--disable-host-loopback", "--ready-fd=5", "--exit-fd=6",
        "--enable-sandbox", "--enable-seccomp", "1234", "tap0"]


def test_slirp4netns_options():
    args = helper.slirp4netns_args({"allow_host_loopback": "true", "cidr": "10.9.8.0/24", "enable_ipv6": "TRUE",
                                    "mtu": "1500", "outbound_addr": "eth1", "outbound_addr6": "fd00::5"},
                                   7, sandbox=False, seccomp=False)
    assert args == ["--configure", "--mtu=1500", "--cidr=10.9.8.0/24", "--enable-ipv6", "--outbound-addr=eth1",
                    "--outbound-addr6=fd00::5", "7", "tap0"]
    assert "--disable-host-loopback" in helper.slirp4netns_args({"allow_host_loopback": "false"}, 7)
    assert "--enable-ipv6" not in helper.slirp4netns_args({"enable_ipv6": "false"}, 7)


@pytest.mark.parametrize("options, message", [
    ({"port_handler": "slirp4netns"}, "unknown slirp4netns option 'port_handler' (valid: allow_host_loopback, "
                                      "cidr, enable_ipv6, mtu, outbound_addr, outbound_addr6)"),
    ({"allow_host_loopback": "yes"}, "slirp4netns option allow_host_loopback=yes: give true or false"),
    ({"enable_ipv6": ""}, "slirp4netns option enable_ipv6=: give true or false"),
    ({"mtu": "65522"}, "slirp4netns option mtu=65522: give a number from 68 to 65521"),
    ({"mtu": "67"}, "slirp4netns option mtu=67: give a number from 68 to 65521"),
    ({"mtu": "1e3"}, "slirp4netns option mtu=1e3: give a number from 68 to 65521"),
    ({"cidr": "10.0.2.0/26"}, "slirp4netns option cidr=10.0.2.0/26: give an IPv4 network with a prefix of 1 to "
                              "25, like 10.0.2.0/24"),
    ({"cidr": "10.0.2.0"}, "slirp4netns option cidr=10.0.2.0: give an IPv4 network"),
    ({"cidr": "10.0.256.0/24"}, "slirp4netns option cidr=10.0.256.0/24: give an IPv4 network"),
    ({"cidr": "fd00::/64"}, "slirp4netns option cidr=fd00::/64: give an IPv4 network"),
    ({"cidr": "10.0.2.1/24"}, "slirp4netns option cidr=10.0.2.1/24: that is not a network address "
                              "(did you mean 10.0.2.0/24?)"),
    ({"outbound_addr": ""}, "slirp4netns option outbound_addr=: give an IP address or an interface name"),
    ({"outbound_addr6": "--enable-sandbox"}, "slirp4netns option outbound_addr6=--enable-sandbox: give an IP"),
])
def test_slirp4netns_refusals(options, message):
    with pytest.raises(UsageError) as caught:
        helper.check("slirp4netns", options)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, RootlessError) and "\n" not in str(caught.value)


# -- pasta ----------------------------------------------------------------------------------

PASTA_DEFAULTS = ["--config-net", "-f", "-q", "--pid", "/tmp/d/ready", "-t", "none", "-u", "none",
                  "-T", "none", "-U", "none", "--no-map-gw", "--dns-forward", "169.254.1.1"]


def test_pasta_defaults():
    assert helper.pasta_args({}, 99, "/tmp/d/ready") == PASTA_DEFAULTS + ["99"]
    assert helper.pasta_args({"args": []}, 99, "/tmp/d/ready") == PASTA_DEFAULTS + ["99"]


@pytest.mark.parametrize("user, left_out", [
    (["-t", "8080:80"], ["-t", "none"]),
    (["-t8080"], ["-t", "none"]),
    (["--tcp-ports", "8080"], ["-t", "none"]),
    (["--udp-ports=53"], ["-u", "none"]),
    (["-T", "auto", "-U", "auto"], ["-T", "none", "-U", "none"]),
])
def test_pasta_port_defaults_give_way_to_the_users_own(user, left_out):
    args = helper.pasta_args({"args": user}, 99, "/tmp/d/ready")
    assert args[-len(user) - 1:] == user + ["99"]  # appended verbatim, the pid last
    expected = list(PASTA_DEFAULTS)
    for i in range(0, len(left_out), 2):
        at = expected.index(left_out[i])
        del expected[at:at + 2]
    assert args[:-len(user) - 1] == expected


def test_pasta_map_gw_is_ours_and_taken_out():
    args = helper.pasta_args({"args": ["--map-gw", "-4"]}, 99, "/tmp/d/ready")
    assert "--map-gw" not in args and "--no-map-gw" not in args and args[-2:] == ["-4", "99"]
    args = helper.pasta_args({"args": ["--no-map-gw"]}, 99, "/tmp/d/ready")
    assert args.count("--no-map-gw") == 1


def test_pasta_dns_forward_of_the_users_own():
    options = {"args": ["--dns-forward", "10.1.1.1"]}
    args = helper.pasta_args(options, 99, "/tmp/d/ready")
    assert "169.254.1.1" not in args and args[-3:] == ["--dns-forward", "10.1.1.1", "99"]
    assert helper.nameserver("pasta", options) == "10.1.1.1"
    assert helper.nameserver("pasta", {"args": ["--dns-forward=10.2.2.2"]}) == "10.2.2.2"


@pytest.mark.parametrize("options, message", [
    ({"args": ["-P", "/tmp/x"]}, "pasta option -P: rootless gives pasta its --pid file"),
    ({"args": ["--pid=/tmp/x"]}, "pasta option --pid=/tmp/x: rootless gives pasta its --pid file"),
    ({"tcp": "80"}, "unknown pasta option 'tcp' (valid: args: pasta's own arguments"),
    ({"args": "-t,80"}, "pasta option args: give a list of pasta's arguments"),
])
def test_pasta_refusals(options, message):
    with pytest.raises(UsageError) as caught:
        helper.check("pasta", options)
    assert str(caught.value).startswith(message)


def test_unknown_mode():
    with pytest.raises(UsageError, match="no network helper is called 'vpnkit' \\(slirp4netns or pasta\\)"):
        helper.start("vpnkit", {}, 1)


# -- the resolver ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode, options, expected", [
    ("slirp4netns", {}, "10.0.2.3"),
    ("slirp4netns", {"cidr": "10.9.8.0/24"}, "10.9.8.3"),
    ("slirp4netns", {"cidr": "172.16.0.0/12"}, "172.16.0.3"),
    ("pasta", {}, "169.254.1.1"),
    ("pasta", {"args": ["-t", "80"]}, "169.254.1.1"),
    ("none", {}, None),
    ("host", {}, None),
])
def test_nameserver(mode, options, expected):
    assert helper.nameserver(mode, options) == expected


# -- a failed helper's reason ---------------------------------------------------------------

@pytest.mark.parametrize("text, reason", [
    ("sent tapfd=5 for tap0\nreceived tapfd=5\ncannot unshare new mount namespace\ncreate_sandbox failed\n"
     "do_slirp is exiting\ndo_slirp failed\nparent failed\n", "cannot unshare new mount namespace"),
    ("/proc/999999/ns/net: No such file or directory\nchild failed(1)\n", "/proc/999999/ns/net: No such file or directory"),
    ("Failed to send 46 bytes to syslog\nNo external routable interface for IPv4\nFailed to send 46 bytes to syslog\n"
     "External interface not usable\nFailed to send 33 bytes to syslog\n", "External interface not usable"),
    ("pasta: unrecognized option '--bogus'\nUsage: pasta [OPTION]... PID\n  -d, --debug\t\tBe verbose\n",
     "pasta: unrecognized option '--bogus'"),
    ("", ""),
])
def test_the_reason_is_the_last_line_that_says_something(text, reason):
    assert helper._Failed("x", text, 256).reason() == reason


def test_failure_messages_are_one_line():
    assert str(helper._Failed("slirp4netns", "prefix length needs to be 1-25\n", 256).error()) == (
        "slirp4netns could not set up the container's network: prefix length needs to be 1-25 (exit 1)")
    message = str(helper._Failed("pasta", "External interface not usable\n", 256).error())
    assert message.startswith("pasta cannot set up the container's network: no interface of this host has a "
                              "default route") and message.endswith("use --network slirp4netns")
    assert str(helper._Failed("pasta", "", 9, late=True).error()) == (
        "pasta did not report the container's network ready within 30 s; it was stopped")
    assert "killed by signal 9" in str(helper._Failed("pasta", "", 9).error())
