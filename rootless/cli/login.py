"""Registry verbs: login and logout.

``login`` checks the credentials against the registry before saving them (GET /v2/, then
answering its challenge), so that a typo shows up now and not halfway through a pull. The
password comes from ``--password-stdin`` (scripts), a prompt on a terminal, or ``-p``, which
puts it in the process list and shell history: we warn, as Docker does.
"""

import argparse
import sys

from rootless.cli import out
from rootless.errors import NotFound, RootlessError, UsageError


def register(sub) -> None:
    p = sub.add_parser("login", help="log in to a registry")
    p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER",
                   help="registry host[:port] (default: docker.io)")
    p.add_argument("-u", "--username", help="user name")
    p.add_argument("-p", "--password", help="password or token (insecure: use --password-stdin)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    # A value is required (--tls-verify=false), as for pull and push: with an optional value,
    # ``--tls-verify quay.io`` would take the server for the value.
    p.add_argument("--tls-verify", type=_boolean, default=None, metavar="BOOL",
                   help="require HTTPS with a verified certificate (default: unless the registry "
                   "is in insecure-registries)")
    p.add_argument("--cert-dir", metavar="DIR", help="CA certificates (*.crt) and client "
                   "certificates (*.cert with *.key) for the registry")
    p.set_defaults(handler=cmd_login)
    p = sub.add_parser("logout", help="log out from a registry")
    p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER",
                   help="registry host[:port] (default: docker.io)")
    p.set_defaults(handler=cmd_logout)


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("expected true or false, not %r" % text)


def cmd_login(ctx, args):
    from rootless.image import auth, regconfig
    host = auth.normalize_host(args.server)
    username, password = _ask(args)
    config = regconfig.RegistryConfig.load()
    endpoints = config.endpoints(host, args.tls_verify, args.cert_dir)
    verify_login(host, (username, password), endpoints, config.timeout,
                 debug=ctx.log if ctx.debug else None,
                 cert_dir=args.cert_dir or "%s/%s" % (config.cert_dir, host))
    path = auth.store_credentials(host, username, password)
    sys.stderr.write("WARNING! Your password will be stored unencrypted in %s.\n" % path)
    out("Login Succeeded")
    return 0


def _ask(args):
    """The user name and the password, from the options, stdin or the terminal."""
    username, password = args.username, args.password
    if password is not None and args.password_stdin:
        raise UsageError("--password and --password-stdin are mutually exclusive")
    if password is not None:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if args.password_stdin:
        if not username:
            raise UsageError("--password-stdin needs --username")
        password = sys.stdin.read()
        if password.endswith("\n"):
            password = password[:-1]
        if password.endswith("\r"):
            password = password[:-1]
    interactive = sys.stdin.isatty()
    if not username:
        if not interactive:
            raise UsageError("cannot ask for a user name: stdin is not a terminal (use --username "
                             "and --password-stdin)")
        try:
            username = input("Username: ").strip()
        except EOFError:
            username = ""
    if not username:
        raise UsageError("a user name is required")
    if password is None:
        if not interactive:
            raise UsageError("cannot ask for a password: stdin is not a terminal (use --password-stdin)")
        import getpass
        try:
            password = getpass.getpass("Password: ")
        except EOFError:
            password = ""
    if not password:
        raise UsageError("a password is required")
    return username, password


def verify_login(host, credentials, endpoints, timeout, debug=None, cert_dir=""):
    """Check ``credentials`` against the registry: GET /v2/ on the first endpoint that
    answers, answer its challenge (Bearer: a token with no scope), and expect a 200.

    Raises Unauthorized when refused, ConnectionFailed when no endpoint answers."""
    import ssl
    from rootless.image import auth, regconfig
    failure = None
    for base, context in endpoints:
        url = base + "/v2/"

        def get(u, h, context=context):
            return regconfig.http_get(u, h, context, timeout)

        if debug:
            debug("login: trying %s" % url)
        try:
            status, headers, _ = get(url, {})
        except regconfig.ConnectionFailed as e:
            if debug:
                debug("login: %s" % e)
            failure = e
            continue
        authenticator = auth.Authenticator(host, credentials, get, debug=debug,
                                           insecure=context is None or context.verify_mode == ssl.CERT_NONE)
        if status == 401:
            value = authenticator.authorization(headers.get("www-authenticate", ""), "")
            if value is None:
                raise authenticator.unauthorized()
            status, headers, _ = get(url, {"Authorization": value})
            if status in (401, 403):
                raise authenticator.unauthorized()
        if status == 200:
            return
        raise RootlessError("%s answered HTTP %d: is %s a container registry?" % (url, status, host))
    if failure is None:
        raise RootlessError("no endpoint to try for %s" % host)
    if failure.certificate_error:
        raise regconfig.ConnectionFailed(
            "%s; put the registry's CA certificate in %s/ca.crt, or use --tls-verify=false if you "
            "trust the network" % (failure, cert_dir), failure.url, True)
    if failure.tls_error:
        raise regconfig.ConnectionFailed(
            "%s; if the registry serves plain HTTP, add %s to insecure-registries in %s or use "
            "--tls-verify=false" % (failure, host, regconfig.config_file()), failure.url, tls_error=True)
    raise failure


def cmd_logout(ctx, args):
    from rootless.image import auth
    host = auth.normalize_host(args.server)
    if not auth.erase_credentials(host):
        message = "not logged in to %s" % host
        found = auth.lookup_credentials(host)
        if found:
            message += " with rootless (the credentials for %s in %s are Docker's: docker logout %s)" % (
                found[0], found[2], auth.docker_key(host))
        raise NotFound(message)
    out("Removing login credentials for %s" % host)
    return 0
