"""``exec``: run a command in a running container (Docker's flags, output and exit codes)."""

import os

from rootless.cli import require_tty
from rootless.cli.parser import BoolFlag


def add_parsers(sub, csub) -> None:
    for parent in (p for p in (sub, csub) if p is not None):
        p = parent.add_parser("exec", help="execute a command in a running container")
        p.add_argument("container", metavar="CONTAINER")
        p.add_argument("args", nargs="...", metavar="COMMAND [ARG...]")
        p.add_argument("-d", "--detach", action=BoolFlag, default=False, help="run the command in the background")
        p.add_argument("--detach-keys", default=None, help="override the key sequence for detaching")
        p.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VALUE]",
                       help="set an environment variable")
        p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                       help="read environment variables from a file")
        p.add_argument("-i", "--interactive", action=BoolFlag, default=False, help="keep STDIN open")
        p.add_argument("--privileged", action=BoolFlag, default=False, help="give the command every capability")
        p.add_argument("-t", "--tty", action=BoolFlag, default=False, help="allocate a pseudo-terminal")
        p.add_argument("-u", "--user", default=None, help='user: "<name|uid>[:<group|gid>]"')
        p.add_argument("-w", "--workdir", default=None, help="working directory inside the container")
        p.set_defaults(handler=cmd_exec)


def cmd_exec(ctx, args):
    from rootless.runtime import exec as rexec
    from rootless.runtime import state
    from rootless.runtime.config import Bundle
    env = args.env
    if args.env_file:
        from rootless.bundle.spec import env_file_lines
        env = env_file_lines(args.env_file) + env
    opts = rexec.ExecOptions(args.args, env, args.workdir,
                             args.user, args.tty, args.privileged)
    keys = None
    if not args.detach:
        require_tty(args.interactive, args.tty)
        if args.tty and args.interactive:
            from rootless.runtime.terminal import detach_keys
            keys = detach_keys(args.detach_keys)
    paths = ctx.paths()
    containers = state.Containers(paths)
    record = containers.find(args.container)
    pid = rexec.running_pid(record)

    def alive():
        return state.first_process_alive(record)
    bundle = Bundle.load(containers.dir(record["id"]))
    every = ()
    if args.privileged:
        from rootless.bundle.spec import ALL_CAPS as every
    proc = rexec.process(bundle.process, opts, every)
    user = None
    if args.user:
        from rootless.bundle import users
        user = (args.user, lambda read: users.resolve(args.user, read("/etc/passwd"), read("/etc/group")))
    if args.detach:
        proc["terminal"] = False
        null = os.open(os.devnull, os.O_RDWR)
        try:
            started = rexec.start(bundle, pid, proc, user, (null, null, null), alive=alive,
                                  cgroup=record.get("cgroup") or "")
        finally:
            os.close(null)
        started.end_keeper()
        return 0
    from rootless.runtime.foreground import Foreground

    def begin(stdio, on_pid):
        return rexec.start(bundle, pid, proc, user, stdio, on_pid, alive=alive, cgroup=record.get("cgroup") or "")
    return Foreground(bundle, args.interactive, start=begin, detach_keys=keys).run()
