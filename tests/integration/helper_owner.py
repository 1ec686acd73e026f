"""A stand-in for a container's owner (the CLI, the monitor), for test_network_helper.py.

``python3 helper_owner.py MODE OPTIONS_JSON [--setup SHELL] [--query NAME]``:

* makes a *target*, a process in new user and network namespaces as a container's first
  process is (``unshare --user --map-root-user --net``, which runs SHELL there, then
  ``sleep``);
* starts MODE's network helper for it with ``rootless.network.helper.start``;
* with ``--query``: asks the helper's resolver (``nameserver``) for NAME's A record from
  inside the target;
* prints one JSON line: {"target", "helper", "nameserver", "debug", "answer"}, or
  {"target", "error", "type"} when start raised;
* then closes its stdout (so the test's end of that pipe sees end of file exactly when
  no other process holds it: not the helper) and holds on until its stdin ends, when it
  stops the helper and the target.

``python3 helper_owner.py --ask SERVER NAME``: one DNS query, run inside the target;
prints the first A record of the answer, or what went wrong.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ask(server: str, name: str) -> str:
    query = struct.pack(">HHHHHH", 0x5151, 0x0100, 1, 0, 0, 0)
    query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(10)
    try:
        sock.sendto(query, (server, 53))
        reply = sock.recv(4096)
    except OSError as e:
        return "error: %s" % e
    if reply[:2] != query[:2] or struct.unpack(">H", reply[6:8])[0] < 1:
        return "no answer (rcode %d)" % (reply[3] & 15)
    return socket.inet_ntoa(reply[-4:])  # the fake resolver's only record: an A record, last


def make_target(setup: str) -> subprocess.Popen:
    proc = subprocess.Popen(["unshare", "--user", "--map-root-user", "--net", "sh", "-c",
                             (setup + " && " if setup else "") + "exec sleep 600"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # not ours: see main
    deadline = time.monotonic() + 10
    while True:  # its namespaces and maps are made before it execs sleep
        try:
            with open("/proc/%d/comm" % proc.pid) as f:
                if f.read().strip() == "sleep":
                    return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the target did not start (exit %s)" % proc.poll())
        time.sleep(0.005)


def main(argv) -> int:
    if argv[0] == "--ask":
        print(ask(argv[1], argv[2]))
        return 0
    sys.path.insert(0, REPO)
    from rootless.network import helper
    mode, options = argv[0], json.loads(argv[1])
    setup = argv[argv.index("--setup") + 1] if "--setup" in argv else ""
    query = argv[argv.index("--query") + 1] if "--query" in argv else None
    target = make_target(setup)
    said = []
    try:
        started = helper.start(mode, options, target.pid, debug=said.append)
    except Exception as e:
        print(json.dumps({"target": target.pid, "error": str(e), "type": type(e).__name__}), flush=True)
        target.kill()
        target.wait()
        return 0
    result = {"target": target.pid, "helper": started.pid, "nameserver": helper.nameserver(mode, options),
              "debug": said}
    if query:
        result["answer"] = subprocess.run(
            ["nsenter", "--preserve-credentials", "-U", "-n", "-t", str(target.pid),
             sys.executable, os.path.abspath(__file__), "--ask", result["nameserver"], query],
            stdout=subprocess.PIPE, timeout=60).stdout.decode().strip()
    print(json.dumps(result), flush=True)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    sys.stdin.buffer.read()
    started.stop()
    target.kill()
    target.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
