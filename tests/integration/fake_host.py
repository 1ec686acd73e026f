"""A stand-in for the host a network helper serves, for test_network_helper.py.

``unshare --user --map-root-user --net --mount python3 fake_host.py [--no-route] OWNER_ARGS...``

As root of its own user, network and mount namespaces (nothing it does is seen outside),
it makes the host side a helper copies and forwards to:

* a veth pair, both ends here: eth0 with 198.51.100.10/24 and a default route via
  198.51.100.1 (``--no-route``: no pair, only lo: the host pasta cannot work with);
* a resolver: /etc/resolv.conf, bound over in this mount namespace only, names
  198.51.100.10, where a small DNS server answers every A query with ANSWER;

and then runs ``helper_owner.py OWNER_ARGS`` as uid/gid 1000 of a user namespace below
(pasta, run as root, switches to "nobody", which is not mapped here), with this
process's stdin and stdout. Exits with the owner's exit code.
"""

import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ADDRESS, GATEWAY, ANSWER = "198.51.100.10", "198.51.100.1", "203.0.113.7"


def sh(*cmd) -> None:
    subprocess.run(cmd, check=True)


def network(route: bool) -> None:
    sh("ip", "link", "set", "lo", "up")
    if route:
        sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
        sh("ip", "link", "set", "eth0p", "up")
        sh("ip", "addr", "add", ADDRESS + "/24", "dev", "eth0")
        sh("ip", "link", "set", "eth0", "up")
        sh("ip", "route", "add", "default", "via", GATEWAY)


def resolver() -> None:
    conf = tempfile.NamedTemporaryFile("w", prefix="resolv-", delete=False)
    conf.write("nameserver %s\n" % ADDRESS)
    conf.close()
    os.chmod(conf.name, 0o644)
    sh("mount", "--bind", conf.name, "/etc/resolv.conf")
    os.unlink(conf.name)  # the bind mount holds it
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ADDRESS, 53))

    def serve():
        while True:
            query, peer = sock.recvfrom(4096)
            end = query.index(b"\0", 12) + 5  # the question: name, type, class
            header = query[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
            record = struct.pack(">HHHLH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(ANSWER)
            sock.sendto(header + query[12:end] + record, peer)
    threading.Thread(target=serve, daemon=True).start()


def main(argv) -> int:
    route = argv[:1] != ["--no-route"]
    if not route:
        argv = argv[1:]
    network(route)
    if route:
        resolver()
    owner = [sys.executable, os.path.join(HERE, "helper_owner.py")] + argv
    return subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000"] + owner).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
