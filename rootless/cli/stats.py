"""``stats``: Docker's table of what containers use, refreshed each second until ^C, or
once (``--no-stream``); ``--all``, ``--no-trunc``, ``--format`` (table, json, templates)."""

import sys
import time

from rootless.cli import out
from rootless.linux import signals

INTERVAL = 1.0  # seconds between two readings (CPU % is the use between them)
CLEAR = "\033[2J\033[H"


def add_parsers(sub, csub) -> None:
    for parent in (p for p in (sub, csub) if p is not None):
        p = parent.add_parser("stats", help="display a live stream of containers' resource usage statistics")
        p.add_argument("containers", nargs="*", metavar="CONTAINER")
        p.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
        p.add_argument("--format", default=None, help="'table', 'table TEMPLATE', 'json' or a Go template")
        p.add_argument("--no-stream", action="store_true", help="disable streaming stats and only pull the first result")
        p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
        p.set_defaults(handler=cmd_stats)


def cmd_stats(ctx, args) -> int:
    from rootless.cli import format as fmt
    from rootless.runtime import stats
    fmt.check(args.format, stats.columns("", "", None, None))
    watch = _Watch(ctx, args)
    if args.no_stream:
        watch.read()
        time.sleep(INTERVAL)
        out(fmt.emit(watch.read(), args.format, stats.COLUMNS))
        return watch.code
    previous = signals.signal(signals.SIGINT, signals.default_int_handler)
    try:
        watch.read()
        while True:
            time.sleep(INTERVAL)
            rows = watch.read()
            sys.stdout.write(CLEAR + fmt.emit(rows, args.format, stats.COLUMNS) + "\n")
            sys.stdout.flush()
            if args.containers and not rows:
                return watch.code
    except KeyboardInterrupt:
        return 0
    finally:
        signals.signal(signals.SIGINT, previous)


class _Watch:
    """The containers to show, read again each time (a named one that is removed goes;
    without names: every running container, or every one with --all)."""

    def __init__(self, ctx, args):
        from rootless import host
        from rootless.runtime import state
        self.paths, self.args = ctx.paths(), args
        self.containers = state.Containers(self.paths)
        self.mem_total = host.mem_total()
        self.last = {}  # id -> stats.Sample
        self.code = 0
        self.own_net = {}  # id -> whether it has a network namespace of its own
        self.told = False  # the notice for a container without a cgroup: once

    def records(self):
        from rootless.errors import NotFound
        from rootless.runtime import state
        from rootless.runtime.start import remove
        if not self.args.containers:
            every = self.containers.all(lambda r: remove(self.paths, r))
            return [r for r in every if self.args.all or r["status"] in (state.RUNNING, state.PAUSED)]
        found = []
        for ref in self.args.containers:
            try:
                found.append(self.containers.find(ref, lambda r: remove(self.paths, r)))
            except NotFound as e:
                if not self.last.get(ref, True):
                    continue
                sys.stderr.write("rootless: error: %s\n" % e)
                self.code = 1
                self.last[ref] = False  # said once
        return found

    def read(self) -> list:
        from rootless.runtime import state, stats
        rows = []
        for record in self.records():
            cid = record["id"] if self.args.no_trunc else record["id"][:12]
            now = None
            if record["status"] in (state.RUNNING, state.PAUSED) and state.first_process_alive(record):
                now = stats.sample(record, self.mem_total, self._own_net(record))
                if not record.get("cgroup") and not self.told:
                    sys.stderr.write("rootless: notice: %s has no cgroup of its own (it runs without limits, or "
                                     "this host delegates none: see 'rootless info'): its figures are summed from "
                                     "/proc over its processes, without those that ended\n" % record["name"])
                    self.told = True
            rows.append(stats.columns(record["name"], cid, self.last.get(record["id"]) or None, now))
            self.last[record["id"]] = now
        return rows

    def _own_net(self, record: dict) -> bool:
        if record["id"] not in self.own_net:
            from rootless import jsonfast
            import os
            from rootless.runtime import stats
            try:
                with open(os.path.join(self.containers.dir(record["id"]), "config.json")) as f:
                    self.own_net[record["id"]] = stats.own_network(jsonfast.load(f))
            except (OSError, ValueError):
                self.own_net[record["id"]] = False
        return self.own_net[record["id"]]
