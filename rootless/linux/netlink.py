"""rtnetlink, as much as rootless needs: one RTM_SETLINK of 32-bit link attributes.

The message is a netlink header, an ifinfomsg naming the link by index, and the attributes
(type, value); the kernel answers with an NLMSG_ERROR whose error is 0 on success. Linux
ignores attribute types it does not know (links are parsed leniently), so setting one a
kernel predates is a no-op there rather than an error.
"""

import _socket as socket  # not socket.py: its enum classes cost ~2 ms to build
import os
import struct

NETLINK_ROUTE = 0
RTM_SETLINK = 19
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2

LOOPBACK_INDEX = 1  # lo is link 1 in every network namespace
IFLA_GSO_IPV4_MAX_SIZE = 63  # Linux 6.3: "BIG TCP" for IPv4
IFLA_GRO_IPV4_MAX_SIZE = 64


def set_link(index: int, attributes) -> None:
    """Set (type, u32 value) attributes of link ``index`` in this network namespace (needs
    CAP_NET_ADMIN in its user namespace); OSError with the kernel's errno if refused."""
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, 0, 0)
    body += b"".join(struct.pack("=HHI", 8, kind, value) for kind, value in attributes)
    message = struct.pack("=IHHII", 16 + len(body), RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        sock.send(message)
        reply = sock.recv(4096)
    finally:
        sock.close()
    _, kind, _, _, _ = struct.unpack_from("=IHHII", reply)
    if kind == NLMSG_ERROR:
        error = -struct.unpack_from("=i", reply, 16)[0]
        if error:
            raise OSError(error, "RTM_SETLINK of link %d: %s" % (index, os.strerror(error)))
