"""The network scenarios of scripts/bench: s11 (published ports: throughput and request
rate) and s12 (`run --rm busybox true` on each tool's default network); `--only s11,s12`.

A module of its own (imported by scripts/bench), as bench_targets.py is. Like with like:

- one server everywhere: busybox httpd (`httpd -f -p 80 -h /www`) from the same busybox
  image (on the host: the same busybox-static binary), serving a sparse 1 GiB file (busybox
  httpd sends files with sendfile) and a 13-byte index.html; one client everywhere: a
  Python reader of the 1 GiB (1 MiB recv_into) and `wrk` for small requests, both on the
  host, as rltest, to 127.0.0.1.
- every published port is bound to 127.0.0.1 on the host; every server listens on port
  80 inside its container (on the host floor: a free port).
- the same user (rltest), podman with the overlay driver as elsewhere.
- rounds interleave the configurations, so a change in the machine's load lands on all.

The configurations, each named in the report with what it did:
  host loopback     the server on the host itself: the floor no forwarding can beat.
  rootless none     `--network none -p`: our forwarder relays (no helper).
  rootless slirp4netns / pasta   `--network MODE -p`: the server holds the host's listener
                    (network.bypass), the helper running; slirp4netns is our default and
                    podman's here, so it is the one the summary sets beside podman's.
  rootless slirp4netns, relayed  the same created with ROOTLESS_PORT_BYPASS=0.
  pasta's own       `--network pasta:-t,PORT:80`: pasta's splice forwarder, no forwarder of ours.
  slirp4netns's own podman `--network slirp4netns:port_handler=slirp4netns`.
  podman default    podman's default network and port handler (rootlessport here).
"""

import json
import os
import re
import shlex
import signal
import socket
import statistics
import time

from bench_targets import _stores  # the same two stores, busybox loaded in each

THROUGHPUT_TO_HOST = 0.9
RUN_DEFAULT_TO_PODMAN = 0.5
BIG = 1 << 30
PAGE = "hello, bench\n"
SERVE = ("mkdir -p /www && printf '%s' > /www/index.html && truncate -s %d /www/big && "
         "exec httpd -f -p 80 -h /www" % (PAGE, BIG))
CLIENT = r'''
import os, socket, sys, time
port = int(sys.argv[1])
for _ in range(200):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        break
    except OSError:
        time.sleep(0.05)
s.sendall(b"GET /big HTTP/1.0\r\nHost: bench\r\n\r\n")
buf = bytearray(1 << 20); view = memoryview(buf); got = 0
def busy():  # the whole machine's CPU time so far, in clock ticks (every process, softirqs)
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:3]) + sum(v[5:8])  # user nice system, irq softirq steal (not idle, iowait)
c = busy(); t = time.perf_counter()
while True:
    n = s.recv_into(view)
    if not n:
        break
    got += n
print(got, time.perf_counter() - t, (busy() - c) / os.sysconf("SC_CLK_TCK"))
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_page(port, tries=200):
    for _ in range(tries):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                if PAGE.encode() in s.recv(4096):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def s11_ports(b, rounds=5):
    """Throughput of 1 GiB and small-request rate through each way of publishing a port."""
    root, rl, pod = _stores(b, "s11")
    client = os.path.join(b.w, "s11", "client.py")
    with open(client, "w") as f:
        f.write(CLIENT)
    os.chmod(client, 0o644)
    configs, cleanup = [], []
    try:
        # The floor: the same httpd binary on the host.
        www = b.user_dir("s11", "www")
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write(PAGE)
        b.as_user(["truncate", "-s", str(BIG), os.path.join(www, "big")])
        port = free_port()
        host = b.as_user_popen(["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:%d" % port, "-h", www])
        cleanup.append(lambda: (os.killpg(host.pid, signal.SIGKILL), host.wait()))
        configs.append(("host loopback", port, "busybox httpd on the host itself, no forwarding"))

        def ours(label, network, what, publish=True, relayed=False):
            port = free_port()
            net = network.replace("PORT", str(port))
            argv = (["env", "ROOTLESS_PORT_BYPASS=0"] if relayed else []) + rl \
                + ["run", "-d", "--network", net] + (["-p", "127.0.0.1:%d:80" % port] if publish else []) \
                + ["busybox", "sh", "-c", SERVE]
            cid = b.check_once(argv).strip()
            cleanup.append(lambda: b.as_user(rl + ["rm", "-f", cid], check=False, capture=True))
            configs.append((label, port, what))

        def theirs(label, network, what):
            port = free_port()
            argv = pod + ["run", "-d"] + (["--network", network] if network else []) + \
                ["-p", "127.0.0.1:%d:80" % port, "busybox", "sh", "-c", SERVE]
            cid = b.check_once(argv).strip()
            cleanup.append(lambda: b.as_user(pod + ["rm", "-f", "-t", "0", cid], check=False, capture=True))
            configs.append((label, port, what))

        ours("rootless none", "none", "--network none -p: our forwarder relays (splice), no helper")
        if b.have("slirp4netns"):
            ours("rootless slirp4netns", "slirp4netns", "--network slirp4netns -p (our default network): the "
                 "server holds the host's listener (network.bypass), slirp4netns running")
            ours("rootless slirp4netns, relayed", "slirp4netns", "the same created with ROOTLESS_PORT_BYPASS=0: "
                 "our forwarder relays (splice)", relayed=True)
        if b.have("pasta"):
            ours("rootless pasta", "pasta", "--network pasta -p: the server holds the host's listener, pasta running")
            ours("pasta's own", "pasta:-t,PORT:80", "--network pasta:-t,PORT:80: pasta forwards (no -p, no forwarder of ours)",
                 publish=False)
        theirs("slirp4netns's own", "slirp4netns:port_handler=slirp4netns",
               "podman --network slirp4netns:port_handler=slirp4netns -p")
        theirs("podman default", None, "podman -p on its default network (%s)" % podman_default(b))
        for label, port, _ in configs:
            if not _wait_page(port):
                raise RuntimeError("%s: nothing served on 127.0.0.1:%d" % (label, port))
        speed = {label: [] for label, _, _ in configs}
        cpu = {label: [] for label, _, _ in configs}
        rate = {label: [] for label, _, _ in configs}

        def fetch(label, port):
            r = b.as_user([b.python, client, str(port)], capture=True)
            got, secs, busy = r.stdout.split()
            if int(got) < BIG:
                raise RuntimeError("%s: %s bytes of %d" % (label, got, BIG))
            return int(got) / float(secs) / 1e6, float(busy) * BIG / int(got)

        # Not counted: the first read of each server's sparse file fills the page cache
        # with its zero pages, and ran at ~400 MB/s in every configuration alike.
        for label, port, _ in configs:
            fetch(label, port)
        for i in range(rounds):
            for label, port, _ in configs:
                mb_s, busy = fetch(label, port)
                speed[label].append(mb_s)
                cpu[label].append(busy)
            for label, port, _ in configs:
                r = b.as_user(["wrk", "-t", "2", "-c", "32", "-d", "4s",
                               "http://127.0.0.1:%d/index.html" % port], capture=True)
                m = re.search(r"Requests/sec:\s+([0-9.]+)", r.stdout)
                if not m:
                    raise RuntimeError("%s: wrk said %s" % (label, r.stdout[-300:]))
                rate[label].append(float(m.group(1)))
        return {"configs": [{"label": label, "port": port, "what": what,
                             "mb_s": speed[label], "req_s": rate[label],
                             "mb_s_median": statistics.median(speed[label]),
                             "cpu_s": cpu[label], "cpu_s_median": statistics.median(cpu[label]),
                             "req_s_median": statistics.median(rate[label])}
                            for label, port, what in configs],
                "fs": b.describe_fs(root)}
    finally:
        for fn in reversed(cleanup):
            fn()
        time.sleep(1)


def podman_default(b):
    r = b.as_user([b.podman, "info", "--format", "{{.Host.NetworkBackend}} / {{.Host.Slirp4NetNS.Executable}}"],
                  check=False, capture=True)
    return (r.stdout or "").strip() or "unknown"


def s12_run_default(b):
    """`run --rm busybox true` with each tool's default network, one hyperfine invocation."""
    root, rl, pod = _stores(b, "s12")
    run_rl = rl + ["run", "--rm", "--storage-driver", "overlay", "busybox", "true"]
    run_pod = pod + ["run", "--rm", "busybox", "true"]
    for argv in (run_rl, run_pod):
        b.check_once(argv)
    mode = b.as_user(rl + ["info", "--format", "{{.Network.Default}}"], check=False, capture=True).stdout.strip()
    cmds = [("rootless run --rm busybox true (default network)", run_rl, None),
            ("podman run --rm busybox true (default network)", run_pod, None)]
    return {"results": b.hyperfine("s12-run", cmds, warmup=3, runs=b.args.run_runs, rounds=3),
            "mode": mode or "?", "podman_mode": podman_default(b), "fs": b.describe_fs(root)}


def _verdict(ok):
    return "**met**" if ok else "**not met**"


def summary(b, add, ms):
    s11 = b.sections.get("s11")
    if s11:
        by = {c["label"]: c for c in s11["configs"]}
        host, pod = by["host loopback"], by["podman default"]
        # Like with like: podman's default network here is slirp4netns, as ours is.
        ours = by.get("rootless slirp4netns") or by["rootless none"]
        add("- **published port, 1 GiB (s11): ours (%s) %.0f MB/s, host loopback %.0f MB/s, podman default "
            "%.0f MB/s: ours/host = %.2f (target ≥ %.1f: %s), ours/podman = %.2f (target ≥ 1: %s)** (medians)."
            % (ours["label"], ours["mb_s_median"], host["mb_s_median"], pod["mb_s_median"],
               ours["mb_s_median"] / host["mb_s_median"], THROUGHPUT_TO_HOST,
               _verdict(ours["mb_s_median"] / host["mb_s_median"] >= THROUGHPUT_TO_HOST),
               ours["mb_s_median"] / pod["mb_s_median"], _verdict(ours["mb_s_median"] >= pod["mb_s_median"])))
        add("- **small requests (s11, wrk): ours %.0f/s vs podman default %.0f/s, ours/podman = %.2f (target ≥ 1: %s)** "
            "(medians; host loopback %.0f/s)." % (ours["req_s_median"], pod["req_s_median"],
                                                  ours["req_s_median"] / pod["req_s_median"],
                                                  _verdict(ours["req_s_median"] >= pod["req_s_median"]),
                                                  host["req_s_median"]))
    s12 = b.sections.get("s12")
    if s12:
        rl, pod = s12["results"]
        ratio = rl["median"] / pod["median"]
        add("- **run --rm busybox true on the default network (s12): %s (%s) vs %s (podman: %s), rootless/podman "
            "= %.2f (target ≤ %.1f: %s)** (medians)." % (ms(rl["median"]), s12["mode"], ms(pod["median"]),
                                                       s12["podman_mode"], ratio, RUN_DEFAULT_TO_PODMAN,
                                                       _verdict(ratio <= RUN_DEFAULT_TO_PODMAN)))


def section(b, add, timing_cells, cmdline):
    s11, s12 = b.sections.get("s11"), b.sections.get("s12")
    if not (s11 or s12):
        return
    add("")
    add("## 10. Networking (bench_network.py)")
    if s11:
        add("")
        add("Published ports: busybox httpd on port 80 in each container (on the host floor, on the host), "
            "published on 127.0.0.1; a Python client reads a sparse 1 GiB file (busybox httpd sends it with "
            "sendfile), `wrk -t2 -c32 -d4s` fetches the 13-byte index.html (busybox httpd closes each "
            "connection: a request is a connection). %d rounds, configurations interleaved, after one "
            "uncounted read of each server's file (it fills the page cache); storage on %s. CPU s/GiB: the "
            "whole machine's busy time (every process, %d CPUs) during a 1 GiB read. Load average at the "
            "start: %s." % (len(s11["configs"][0]["mb_s"]), s11["fs"], os.cpu_count() or 0, s11["loadavg"]))
        add("")
        add("| configuration | what it did | 1 GiB: MB/s (median; rounds) | vs host | CPU s/GiB (median) "
            "| requests/s (median; rounds) |")
        add("|---|---|---|---|---|---|")
        host = next(c for c in s11["configs"] if c["label"] == "host loopback")
        for c in s11["configs"]:
            add("| %s | %s | %.0f (%s) | %.2f | %s | %.0f (%s) |" % (
                c["label"], c["what"], c["mb_s_median"], ", ".join("%.0f" % v for v in c["mb_s"]),
                c["mb_s_median"] / host["mb_s_median"],
                "%.2f" % c["cpu_s_median"], c["req_s_median"],
                ", ".join("%.0f" % v for v in c["req_s"])))
    if s12:
        add("")
        add("`run --rm busybox true` with each tool's default network (rootless: %s; podman: %s); storage "
            "driver overlay on both, on %s. Load average at the start: %s." % (
                s12["mode"], s12["podman_mode"], s12["fs"], s12["loadavg"]))
        add("")
        add("| command | mean ± σ | median | min |")
        add("|---|---|---|---|")
        for r in s12["results"]:
            cells = timing_cells(r)
            add("| `%s` | %s |" % (cmdline(r["argv"], b.w), " | ".join(cells[:3])))
