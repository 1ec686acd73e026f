"""rootless.network.ports: -p/--expose/-P parsing, the annotation, how ps/port/inspect show
ports (the expected strings are what Docker 28's client printed for the same bindings),
and listen() with real sockets on 127.0.0.1."""

import errno
import json
import socket

import pytest

from rootless.errors import Conflict, RootlessError, Unsupported, UsageError
from rootless.network import ports
from rootless.network.ports import PortBinding as B


# -- parse_publish: every form of `docker run --help`'s -p, and the ranges ------------------------

@pytest.mark.parametrize("spec, expected", [
    ("80", [B("", 0, 80, "tcp")]),
    ("80/udp", [B("", 0, 80, "udp")]),
    ("80/TCP", [B("", 0, 80, "tcp")]),
    ("80/", [B("", 0, 80, "tcp")]),
    ("8080:80", [B("", 8080, 80, "tcp")]),
    ("0:80", [B("", 0, 80, "tcp")]),
    ("127.0.0.1:8080:80", [B("127.0.0.1", 8080, 80, "tcp")]),
    ("127.0.0.1::80/udp", [B("127.0.0.1", 0, 80, "udp")]),
    ("0.0.0.0:8080:80", [B("0.0.0.0", 8080, 80, "tcp")]),
    ("[::1]:8080:80", [B("::1", 8080, 80, "tcp")]),
    ("[::]::80/udp", [B("::", 0, 80, "udp")]),
    ("::1:8080:80", [B("::1", 8080, 80, "tcp")]),  # unbracketed, as Docker takes it
    ("8000-8002:80-82", [B("", 8000, 80, "tcp"), B("", 8001, 81, "tcp"), B("", 8002, 82, "tcp")]),
    ("127.0.0.1:53-54:53-54/udp", [B("127.0.0.1", 53, 53, "udp"), B("127.0.0.1", 54, 54, "udp")]),
    ("80-81", [B("", 0, 80, "tcp"), B("", 0, 81, "tcp")]),
    ("65535:65535", [B("", 65535, 65535, "tcp")]),
    ("published=8080,target=80", [B("", 8080, 80, "tcp")]),
    ("published=8080,target=80,protocol=udp", [B("", 8080, 80, "udp")]),
    ("target=80", [B("", 0, 80, "tcp")]),
])
def test_publish_forms(spec, expected):
    assert ports.parse_publish(spec) == expected


@pytest.mark.parametrize("spec, error, message", [
    ("8080:", UsageError, "no port specified: 8080:<empty>"),
    ("", UsageError, "no port specified: <empty>"),
    ("/udp", UsageError, "no port specified: /udp<empty>"),
    ("0", UsageError, "invalid containerPort: 0 (container ports are 1-65535)"),
    ("8080:0", UsageError, "invalid containerPort: 0 (container ports are 1-65535)"),
    ("70000", UsageError, "invalid containerPort: 70000"),
    ("8080:70000", UsageError, "invalid containerPort: 70000"),
    ("70000:80", UsageError, "invalid hostPort: 70000"),
    ("x:80", UsageError, "invalid hostPort: x"),
    ("+80", UsageError, "invalid containerPort: +80"),
    ("82-80", UsageError, "invalid containerPort: 82-80"),
    ("8000-8001:80-82", UsageError, "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"),
    ("8000:80-82", UsageError, "invalid ranges specified for container and host Ports: 80-82 and 8000"),
    ("80/icmp", UsageError, "invalid proto: icmp"),
    ("80/sctp", Unsupported, "sctp ports are not supported, only tcp and udp (-p 80/sctp)"),
    ("8000-8010:80", Unsupported, "host port range for one container port is not supported (-p 8000-8010:80)"),
    ("1.2.3:80:80", UsageError, "invalid IP address: 1.2.3"),
    ("[::1:80:80", UsageError, "invalid IP address: [::1"),
    ("localhost:80:80", UsageError, "invalid IP address: localhost"),
    ("published=8080,target", UsageError, "invalid publish opts format (should be name=value but got 'target')"),
])
def test_bad_publish_values_are_one_line_naming_them(spec, error, message):
    with pytest.raises(error) as caught:
        ports.parse_publish(spec)
    assert str(caught.value) == message or message in str(caught.value)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 125


def test_expose_and_publish_all():
    assert ports.parse_expose("80") == [(80, "tcp")]
    assert ports.parse_expose("53/udp") == [(53, "udp")]
    assert ports.parse_expose("8000-8002") == [(8000, "tcp"), (8001, "tcp"), (8002, "tcp")]
    for bad, message in (("80:80", "invalid port format for --expose: 80:80"),
                         ("x", "invalid range format for --expose: x"),
                         ("0", "container ports are 1-65535"), ("80/icmp", "invalid proto: icmp")):
        with pytest.raises(UsageError, match=message.replace("(", r"\(")):
            ports.parse_expose(bad)
    assert ports.publish_all(["81/tcp", (80, "tcp"), "53/udp", "80"]) == [
        B("", 0, 53, "udp"), B("", 0, 80, "tcp"), B("", 0, 81, "tcp")]


def test_the_exposed_set_and_what_is_published():
    asked = ports.parse_publish("8080:80") + ports.parse_publish("9090:90/udp")
    exposed = ports.exposed_ports({"443/tcp": {}, "80/tcp": {}, "7": {}, "junk/tcp": {}}, [(8000, "tcp")], asked)
    assert exposed == ["7/tcp", "80/tcp", "90/udp", "443/tcp", "8000/tcp"]
    assert ports.to_publish(asked, False, exposed) == asked
    # -P: every exposed port no -p binds, to any free port; the -p bindings are kept.
    assert ports.to_publish(asked, True, exposed) == asked + [B("", 0, 7, "tcp"), B("", 0, 443, "tcp"),
                                                             B("", 0, 8000, "tcp")]


def test_the_annotation_round_trips():
    bindings = [B("", 0, 80, "tcp"), B("::1", 8080, 81, "udp")]
    text = ports.to_json(bindings)
    assert json.loads(text) == [["", 0, 80, "tcp"], ["::1", 8080, 81, "udp"]]
    assert ports.from_json(text) == bindings
    assert ports.from_json(json.loads(text)) == bindings  # a record's list, already decoded
    assert ports.from_json(None) == ports.from_json("") == ports.from_json([]) == []


# -- the surfaces' shapes: strings Docker 28's client printed for the same ports ----------------

def test_ps_ports_column_as_docker_groups_it():
    column = ports.docker_ports_column
    assert column([]) == ""
    assert column([B("", 8080, 80, "tcp")]) == "0.0.0.0:8080->80/tcp"
    # A range to other host ports is not merged; the same host ports are.
    assert column(ports.parse_publish("8000-8002:80-82")) == \
        "0.0.0.0:8000->80/tcp, 0.0.0.0:8001->81/tcp, 0.0.0.0:8002->82/tcp"
    assert column(ports.parse_publish("8000-8001:8000-8001")) == "0.0.0.0:8000-8001->8000-8001/tcp"
    mixed = [B("0.0.0.0", 8080, 80, "tcp"), B("", 8081, 81, "tcp"), B("", 8000, 8000, "tcp"),
             B("", 8001, 8001, "tcp"), B("::", 8080, 80, "tcp"), B("", 5353, 53, "udp")]
    assert column(mixed, ["443/tcp", "444/tcp", "80/tcp"]) == (
        "443-444/tcp, 0.0.0.0:8000-8001->8000-8001/tcp, 0.0.0.0:5353->53/udp, 0.0.0.0:8080->80/tcp, "
        "[::]:8080->80/tcp, 0.0.0.0:8081->81/tcp")
    assert column([B("::", 80, 80, "tcp"), B("::1", 81, 81, "tcp"), B("::1", 9082, 82, "tcp"),
                   B("", 55, 55, "udp")], ["53/udp", "54/udp", "56/udp"]) == \
        "53-54/udp, 56/udp, 0.0.0.0:55->55/udp, [::]:80->80/tcp, [::1]:81->81/tcp, [::1]:9082->82/tcp"
    assert column([B("127.0.0.1", 90, 90, "udp"), B("127.0.0.1", 91, 91, "udp"), B("", 91, 91, "udp")]) == \
        "127.0.0.1:90-91->90-91/udp, 0.0.0.0:91->91/udp"


def test_network_settings_ports_show_every_exposed_port():
    actual = [B("", 8080, 80, "tcp"), B("::", 8080, 80, "tcp"), B("127.0.0.1", 10009, 9, "udp")]
    shown = ports.network_settings_ports(["81/tcp", "80/tcp", "100/tcp"], actual)
    assert shown == {"100/tcp": None, "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                                                 {"HostIp": "::", "HostPort": "8080"}],
                     "81/tcp": None, "9/udp": [{"HostIp": "127.0.0.1", "HostPort": "10009"}]}
    assert list(shown) == ["100/tcp", "80/tcp", "81/tcp", "9/udp"]  # Go sorts a map's keys
    assert ports.port_bindings(ports.parse_publish("8080:80") + ports.parse_publish("127.0.0.1::80") +
                               ports.parse_publish("53/udp")) == {
        "53/udp": [{"HostIp": "", "HostPort": ""}],
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": ""}]}


def test_port_lines_as_docker_sorts_them():
    actual = [B("", 8080, 80, "tcp"), B("::", 8080, 80, "tcp"), B("127.0.0.1", 10009, 9, "udp"),
              B("", 9000, 100, "tcp")]
    assert ports.port_lines(actual) == ["9/udp -> 127.0.0.1:10009", "80/tcp -> 0.0.0.0:8080",
                                        "80/tcp -> [::]:8080", "100/tcp -> 0.0.0.0:9000"]
    assert ports.port_lines(actual, "80") == ports.port_lines(actual, "80/tcp") == ["0.0.0.0:8080", "[::]:8080"]
    assert ports.port_lines(actual, "80/") == ["0.0.0.0:8080", "[::]:8080"]
    assert ports.port_lines(actual, "9/udp") == ["127.0.0.1:10009"]
    assert ports.port_lines(actual, "81") == ports.port_lines(actual, "80/sctp") == ports.port_lines([], "80") == []
    for bad in ("x", "70000", "-1"):
        with pytest.raises(UsageError, match=r"invalid port \(%s\)" % bad):
            ports.port_lines(actual, bad)


def test_natural_order_is_sortorders():
    words = ["a10", "a9", "a09", "a", "9", "b", "a1b", "a1"]
    assert sorted(words, key=ports.natural_key) == ["9", "a", "a1", "a1b", "a9", "a09", "a10", "b"]


# -- listen(): real sockets on 127.0.0.1 ----------------------------------------------------

def test_listen_binds_a_free_port_and_the_socket_works():
    (tcp, tsock), (udp, usock) = ports.listen([B("127.0.0.1", 0, 80, "tcp"), B("127.0.0.1", 0, 53, "udp")])
    try:
        assert tcp.host_port > 0 and tcp[:1] + tcp[2:] == ("127.0.0.1", 80, "tcp")
        assert udp.host_port > 0 and udp.proto == "udp" and udp.container_port == 53
        assert tsock.getsockname() == ("127.0.0.1", tcp.host_port) and tsock.type == socket.SOCK_STREAM
        assert not tsock.get_inheritable() and tsock.getblocking() is False and usock.getblocking() is False
        assert tsock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) and \
            tsock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        client = socket.create_connection(("127.0.0.1", tcp.host_port), timeout=5)
        tsock.settimeout(5)
        conn, _ = tsock.accept()
        client.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        conn.close()
        client.close()
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b"dgram", ("127.0.0.1", udp.host_port))
        usock.settimeout(5)
        assert usock.recvfrom(16)[0] == b"dgram"
        sender.close()
    finally:
        tsock.close()
        usock.close()


def test_a_port_in_use_is_a_conflict_and_nothing_stays_open():
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = held.getsockname()[1]
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    other = free.getsockname()[1]
    free.close()
    try:
        with pytest.raises(Conflict) as caught:
            ports.listen([B("127.0.0.1", other, 81, "tcp"), B("127.0.0.1", port, 80, "tcp")])
        message = str(caught.value)
        assert message.startswith("port %d/tcp on 127.0.0.1 is already in use" % port), message
        assert caught.value.exit_code == 125 and "\n" not in message
        # The socket bound before the failure was closed: its port binds again.
        again = socket.socket()
        again.bind(("127.0.0.1", other))
        again.close()
    finally:
        held.close()


def test_a_privileged_port_names_the_sysctl_only_when_the_kernel_refuses():
    start = ports.unprivileged_port_start()
    assert start is not None  # /proc/sys/net/ipv4/ip_unprivileged_port_start exists on every kernel we run
    if start == 0:
        # Nothing is privileged here: port 1 may still be taken, but never refused for privilege.
        error = ports.bind_error(B("", 1, 80, "tcp"), OSError(errno.EACCES, "Permission denied"))
        assert "sysctl" not in str(error)
        return
    port = start - 1
    try:
        bound = ports.listen([B("127.0.0.1", port, 80, "tcp")])
    except Conflict:
        pytest.skip("port %d is in use on this host" % port)
    except RootlessError as e:
        # Refused: an unprivileged user (the kernel said EACCES); the message says what to change.
        assert str(e) == ("cannot publish port %d/tcp on 127.0.0.1: ports below %d are privileged; publish a "
                          "host port of %d or more, or let unprivileged users bind it (as root: sysctl "
                          "net.ipv4.ip_unprivileged_port_start=%d)" % (port, start, start, port))
        assert e.exit_code == 125
    else:
        # Bound: root (or CAP_NET_BIND_SERVICE) may; the check is only the kernel's.
        for _, sock in bound:
            sock.close()


def test_other_bind_errors_name_the_port():
    error = ports.bind_error(B("192.0.2.1", 8080, 80, "tcp"), OSError(errno.EADDRNOTAVAIL, "Cannot assign"))
    assert str(error) == "cannot publish port 8080/tcp on 192.0.2.1: 192.0.2.1 is not an address of this host"
    error = ports.bind_error(B("", 65000, 80, "udp"), OSError(errno.EACCES, "Permission denied"))
    assert str(error) == "cannot publish port 65000/udp on 0.0.0.0: Permission denied"  # not a privileged port
