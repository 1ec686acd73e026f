"""Published ports: Docker's ``-p``, ``--expose`` and ``-P``, the host sockets that publish
them, and how ``ps``, ``port`` and ``inspect`` show them.

Three sets, as Docker keeps them:

* *asked*: the bindings ``-p`` asked for, plus one with host port 0 for each exposed port
  ``-P`` publishes; ``bundle.create`` writes them into config.json (annotation
  ``io.rootless.ports``, ``to_json``) and, the ``-p`` ones, into HostConfig.PortBindings.
  They are what the runtime listens on.
* *exposed*: the image's EXPOSE, ``--expose`` and every ``-p`` container port (Docker's
  Config.ExposedPorts), annotation ``io.rootless.exposed`` (a JSON list of ``"80/tcp"``).
* *actual*: what ``listen`` bound while the container runs, free ports chosen. The runtime
  keeps it in the container record (``record["ports"]``, ``to_json``'s list); ``ps``,
  ``port`` and ``inspect`` read it there, and show nothing of it when not running.

A binding is ``PortBinding(host_ip, host_port, container_port, proto)``: ``host_ip`` ""
is every IPv4 address of the host (Docker shows ``0.0.0.0``), ``host_port`` 0 any free
port, ``proto`` ``tcp`` or ``udp``.

Parsing follows Docker's (go-connections' nat.ParsePortSpec, the CLI's --expose loop),
with its error wording, except where rootless refuses what Docker takes: container port
0, ``sctp``, and a host port range for one container port (Docker picks a free port in
it; a binding here has one host port).

Privileged ports are the kernel's business: ``listen`` just binds, and only when the
bind fails with EACCES for a port below net.ipv4.ip_unprivileged_port_start does the
error name that sysctl. So root (or CAP_NET_BIND_SERVICE) binds any port, and on a host
whose start is 0 nobody needs anything. Checking the number first would refuse root, and
would say nothing true about a host that allows it.

Pure but for ``listen`` and ``unprivileged_port_start``; socket and ipaddress are imported
only when an address is bound or checked (this module is read on every ``run``).
"""

from collections import namedtuple

from rootless import jsonfast
from rootless.errors import Conflict, RootlessError, Unsupported, UsageError

PortBinding = namedtuple("PortBinding", "host_ip host_port container_port proto")

PROTOS = ("tcp", "udp")
ALL_IPV4 = "0.0.0.0"
BACKLOG = 512
SYSCTL = "/proc/sys/net/ipv4/ip_unprivileged_port_start"


# -- parsing (pure) -------------------------------------------------------------------------

def parse_publish(spec: str) -> list:
    """The bindings of one ``-p`` value: ``[ip:][hostPort:]containerPort[/proto]``, ports
    or equal-sized ranges (``8000-8002:80-82``), ``[::1]:8080:80`` for IPv6, or the long
    form ``published=8080,target=80,protocol=udp``. A bad value is a UsageError naming it."""
    spec = _standard_notation(spec)
    ip, host, container = _split_parts(spec)
    proto, container = _split_proto(container)
    ip = _host_ip(ip)
    if not container:
        raise UsageError("no port specified: %s<empty>" % spec)
    start, end = _range(container, "invalid containerPort: %s" % container)
    host_start = host_end = 0
    if host:
        host_start, host_end = _range(host, "invalid hostPort: %s" % host, zero=True)
        if host_end - host_start != end - start:
            if start == end:
                raise Unsupported("a host port range for one container port is not supported "
                                  "(-p %s): give one host port, or none for any free one" % spec)
            raise UsageError("invalid ranges specified for container and host Ports: %s and %s"
                             % (container, host))
    proto = _proto(proto, "-p " + spec)
    return [PortBinding(ip, host_start + i if host else 0, start + i, proto) for i in range(end - start + 1)]


def parse_expose(spec: str) -> list:
    """The (port, proto) pairs of one ``--expose`` value: ``80``, ``80/udp``, ``8000-8010``."""
    if ":" in spec:
        raise UsageError("invalid port format for --expose: %s" % spec)
    proto, port = _split_proto(spec)
    start, end = _range(port, "invalid range format for --expose: %s" % spec)
    proto = _proto(proto, "--expose " + spec)
    return [(p, proto) for p in range(start, end + 1)]


def publish_all(exposed) -> list:
    """``-P``: a binding to any free host port, on every address, for each exposed port
    (``"80/tcp"`` strings or (port, proto) pairs), in port order."""
    return [PortBinding("", 0, port, proto) for port, proto in sorted(set(map(port_proto, exposed)))]


def to_publish(asked, all_exposed: bool, exposed) -> list:
    """The bindings to listen on: the ``-p`` ones, then with ``-P`` one to any free port
    for each exposed port that no ``-p`` binds (Docker keeps a ``-p`` binding under ``-P``)."""
    if not all_exposed:
        return list(asked)
    bound = {(b.container_port, b.proto) for b in asked}
    return list(asked) + publish_all([e for e in exposed if port_proto(e) not in bound])


def exposed_ports(image_exposed, expose=(), bindings=()) -> list:
    """Docker's Config.ExposedPorts as a sorted list of ``"80/tcp"``: the image's
    ExposedPorts keys (one that does not parse is left out), the ``--expose`` pairs and the
    container port of every ``-p`` binding."""
    found = set(expose) | {(b.container_port, b.proto) for b in bindings}
    for key in image_exposed or ():
        try:
            found.add(port_proto(key))
        except ValueError:
            continue
    return ["%d/%s" % pair for pair in sorted(found)]


def port_proto(item) -> tuple:
    """(port, proto) of ``"80/tcp"``, ``"80"`` (tcp, as the image spec says) or a pair."""
    if isinstance(item, str):
        port, _, proto = item.partition("/")
        if not (port.isdigit() and port.isascii()) or not 0 < int(port) < 65536:
            raise ValueError("not a port: %r" % item)
        return int(port), (proto or "tcp").lower()
    port, proto = item
    return int(port), proto


def port_key(port: int, proto: str) -> str:
    return "%d/%s" % (port, proto)


def _standard_notation(spec: str) -> str:
    """The long form ``published=8080,target=80,protocol=udp`` as ``8080:80/udp`` (the
    Docker CLI's convertToStandardNotation; other keys are ignored there too)."""
    if "=" not in spec:
        return spec
    params = {"protocol": "tcp"}
    for param in spec.split(","):
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise UsageError("invalid publish opts format (should be name=value but got '%s')" % param)
        params[key] = value
    return "%s:%s/%s" % (params.get("published", ""), params.get("target", ""), params["protocol"])


def _split_parts(spec: str) -> tuple:
    """(ip, hostPort, containerPort): the last two ``:`` fields are the ports, whatever is
    before them the address (so an unbracketed IPv6 address works too, as in Docker)."""
    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _split_proto(text: str) -> tuple:
    """(proto, port) of ``80/udp``; ``80`` and ``80/`` are tcp; ``/udp`` is no port."""
    port, sep, proto = text.partition("/")
    if not port:
        return "", ""
    return (proto or "tcp"), port


def _host_ip(ip: str) -> str:
    if ip.startswith("[") or ip.endswith("]"):
        if not (ip.startswith("[") and ip.endswith("]")):
            raise UsageError("invalid IP address: %s" % ip)
        ip = ip[1:-1]
    if ip:
        import ipaddress
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise UsageError("invalid IP address: %s" % ip) from None
    return ip


def _range(text: str, message: str, zero: bool = False) -> tuple:
    """(start, end) of ``N`` or ``N-M`` (Go's ParseUint: decimal digits, 16 bits); port 0
    only where ``zero`` (a host port: any free one)."""
    first, sep, last = text.partition("-")
    numbers = [first, last] if sep else [first]
    if not all(n.isdigit() and n.isascii() for n in numbers):
        raise UsageError(message)
    start, end = int(first), int(last if sep else first)
    if end > 65535 or end < start:
        raise UsageError(message)
    if start == 0 and not zero:
        raise UsageError("%s (container ports are 1-65535)" % message)
    return start, end


def _proto(proto: str, where: str) -> str:
    proto = proto.lower()
    if proto in PROTOS:
        return proto
    if proto == "sctp":
        raise Unsupported("sctp ports are not supported, only tcp and udp (%s)" % where)
    raise UsageError("invalid proto: %s" % proto)


# -- the annotation and the record ----------------------------------------------------------

def to_json(bindings) -> str:
    """A JSON list of ``[host_ip, host_port, container_port, proto]``."""
    return jsonfast.dumps([[b.host_ip, b.host_port, b.container_port, b.proto] for b in bindings])


def from_json(text) -> list:
    """The bindings of ``to_json``'s text; also takes the list already decoded (a record's
    ``ports``), and None or "" (none)."""
    items = jsonfast.loads(text) if isinstance(text, (str, bytes)) and text else text
    return [PortBinding(str(ip), int(hp), int(cp), str(proto)) for ip, hp, cp, proto in items or ()]


# -- publishing: host sockets ------------------------------------------------------------

def listen(bindings) -> list:
    """[(actual binding, socket)]: one socket per binding, bound in this process's network
    namespace (for tcp, listening, SO_REUSEADDR, backlog 512), non-blocking and not
    inherited by exec'd programs. A host port 0 becomes the free port the kernel chose. On
    any failure every socket opened here is closed, and the error says which port and why
    (in use: Conflict; privileged: the sysctl to change; both exit 125)."""
    import socket
    opened = []
    try:
        for binding in bindings:
            opened.append(_bind(socket, binding))
    except BaseException:
        for _, sock in opened:
            sock.close()
        raise
    return opened


def _bind(socket, binding):
    family = socket.AF_INET6 if ":" in binding.host_ip else socket.AF_INET
    tcp = binding.proto == "tcp"
    sock = None
    try:
        sock = socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        sock.set_inheritable(False)
        if family == socket.AF_INET6:
            # "::" means IPv6 only here, as Docker binds it: "" is the IPv4 wildcard.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if tcp:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((binding.host_ip or ALL_IPV4, binding.host_port))
        if tcp:
            sock.listen(BACKLOG)
        sock.setblocking(False)
        return binding._replace(host_port=sock.getsockname()[1]), sock
    except OSError as e:
        if sock is not None:
            sock.close()
        raise bind_error(binding, e) from None


def bind_error(binding, error: OSError) -> RootlessError:
    """What a failed bind of ``binding`` tells the user (pure but for reading the sysctl)."""
    import errno
    where = "port %d/%s on %s" % (binding.host_port, binding.proto, binding.host_ip or ALL_IPV4)
    if error.errno == errno.EADDRINUSE:
        return Conflict("%s is already in use (another container or program has it): cannot publish "
                        "container port %d there; choose another host port, or none for any free one"
                        % (where, binding.container_port))
    if error.errno == errno.EACCES:
        start = unprivileged_port_start()
        if start is not None and binding.host_port < start:
            return RootlessError(
                "cannot publish %s: ports below %d are privileged; publish a host port of %d or more, "
                "or let unprivileged users bind it (as root: sysctl net.ipv4.ip_unprivileged_port_start=%d)"
                % (where, start, start, binding.host_port))
    if error.errno == errno.EADDRNOTAVAIL:
        return RootlessError("cannot publish %s: %s is not an address of this host"
                             % (where, binding.host_ip))
    return RootlessError("cannot publish %s: %s" % (where, error.strerror or error))


def unprivileged_port_start():
    """net.ipv4.ip_unprivileged_port_start of this network namespace (None if unreadable)."""
    try:
        with open(SYSCTL) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


# -- how the surfaces show them (pure) ---------------------------------------------------

def docker_ports_column(actual, exposed=()) -> str:
    """``ps``'s PORTS, as docker/cli's DisplayablePorts writes it: ports sorted by container
    port, address, host port, proto; a port published on the same host port, and an exposed
    port not published (``exposed``: those of a running container), grouped into ranges of
    consecutive ports per address and proto (``0.0.0.0:8000-8001->8000-8001/tcp``,
    ``443-444/tcp``); every other binding listed after them one by one
    (``0.0.0.0:8080->80/tcp``, never merged, as Docker 28 prints ``-p 8000-8001:80-81``)."""
    bound = {(b.container_port, b.proto) for b in actual}
    entries = [(b.container_port, b.host_ip or ALL_IPV4, b.host_port, b.proto) for b in actual]
    entries += [(port, "", 0, proto) for port, proto in set(map(port_proto, exposed)) if (port, proto) not in bound]
    groups, order, result, mappings = {}, [], [], []
    for private, ip, public, proto in sorted(entries):
        if ip and public != private:
            mappings.append("%s->%d/%s" % (join_host_port(ip, public), private, proto))
            continue
        key = (ip, proto)
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
            order.append(key)
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_group(key, *group))
            groups[key] = [private, private]
    return ", ".join(result + [_group(key, *groups[key]) for key in order] + mappings)


def _group(key: tuple, first: int, last: int) -> str:
    ip, proto = key
    ports = str(first) if first == last else "%d-%d" % (first, last)
    if ip:
        ports = "%s->%s" % (join_host_port(ip, ports), ports)
    return "%s/%s" % (ports, proto)


def join_host_port(ip: str, port) -> str:
    """Go's net.JoinHostPort: an IPv6 address in brackets."""
    return ("[%s]:%s" if ":" in ip else "%s:%s") % (ip, port)


def network_settings_ports(asked_exposed, actual) -> dict:
    """inspect's NetworkSettings.Ports of a running container: every exposed port (null
    when not published) and every actual binding, keys sorted as Go sorts a map's."""
    ports = {port_key(*port_proto(item)): None for item in asked_exposed}
    for b in actual:
        key = port_key(b.container_port, b.proto)
        if ports.get(key) is None:
            ports[key] = []
        ports[key].append({"HostIp": b.host_ip or ALL_IPV4, "HostPort": str(b.host_port)})
    return {key: ports[key] for key in sorted(ports)}


def port_bindings(asked) -> dict:
    """HostConfig.PortBindings of the ``-p`` bindings: ``{"80/tcp": [{"HostIp": "",
    "HostPort": "8080"}]}`` ("" for any free port), keys sorted."""
    found = {}
    for b in asked:
        found.setdefault(port_key(b.container_port, b.proto), []).append(
            {"HostIp": b.host_ip, "HostPort": str(b.host_port) if b.host_port else ""})
    return {key: found[key] for key in sorted(found)}


def port_lines(actual, private=None) -> list:
    """The ``port`` command's lines: ``80/tcp -> 0.0.0.0:8080`` for each binding, or with
    ``private`` (``80``, ``80/udp``; tcp when no proto) the host addresses of that port
    alone (``0.0.0.0:8080``); none when it is not published. Sorted as Docker's
    (sortorder.NaturalLess). A ``private`` that is no port number is a UsageError."""
    if private is None:
        lines = ["%d/%s -> %s" % (b.container_port, b.proto, join_host_port(b.host_ip or ALL_IPV4, b.host_port))
                 for b in actual]
    else:
        port, _, proto = private.partition("/")
        if not (port.isdigit() and port.isascii()) or int(port) > 65535:
            raise UsageError("invalid port (%s): give a port number, with /tcp or /udp if you like" % port)
        wanted = (int(port), proto or "tcp")
        lines = [join_host_port(b.host_ip or ALL_IPV4, b.host_port) for b in actual
                 if (b.container_port, b.proto) == wanted]
    return sorted(lines, key=natural_key)


def natural_key(text: str) -> list:
    """A sort key giving fvbommel/sortorder's NaturalLess order: runs of digits compare as
    numbers (before any other character; equal numbers: fewer leading zeros first), the
    rest byte by byte."""
    import re
    key = []
    for digits, other in re.findall(r"([0-9]+)|([^0-9])", text):
        if digits:
            stripped = digits.lstrip("0")
            key.append((0, len(stripped), stripped, len(digits) - len(stripped)))
        else:
            key.append((1, ord(other)))
    return key
