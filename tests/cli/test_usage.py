"""Usage errors in Docker's words, through the built zipapp, as the unprivileged user.

Every refusal is one line on stderr, ``rootless: error: MESSAGE (see 'rootless VERB --help')``,
exit 125, nothing on stdout and nothing written under the storage root. The messages
are Docker 28's (``docker VERB ...`` prints them without a daemon), with rootless for docker.
"""

import os
import subprocess

import pytest

from conftest import loaded_root


def refused(rl, *args, stdin=subprocess.DEVNULL) -> str:
    """The one-line message of a refused command line (after ``rootless: error: ``)."""
    proc = rl(*args, check=False, stdin=stdin)
    err = proc.stderr.decode()
    assert proc.returncode == 125, (args, proc.returncode, err)
    assert err.startswith("rootless: error: ") and err.count("\n") == 1, (args, err)
    assert proc.stdout == b"", args
    assert not os.path.exists(rl.root), "a refused command line wrote %s" % rl.root
    return err[len("rootless: error: "):-1]


@pytest.mark.parametrize("args, helps", [
    (["run", "--foo"], "run"),
    (["run", "--foo", "busybox"], "run"),
    (["container", "run", "--foo"], "container run"),
    (["create", "--foo=bar", "busybox"], "create"),
    (["start", "--foo", "c"], "start"),
    (["rm", "--foo", "c"], "rm"),
    (["ps", "--foo"], "ps"),
    (["container", "ls", "--foo"], "container ls"),
    (["images", "--foo"], "images"),
    (["image", "ls", "--foo"], "image ls"),
    (["image", "rm", "--foo", "x"], "image rm"),
    (["tag", "--foo", "a", "b"], "tag"),
    (["load", "--foo"], "load"),
    (["pull", "--foo", "x"], "pull"),
    (["login", "--foo"], "login"),
    (["version", "--foo"], "version"),
    (["system", "df", "--foo"], "system df"),
    (["--foo", "images"], ""),
])
def test_unknown_flag_names_the_verbs_help_once(rl, args, helps):
    prog = ("rootless " + helps).strip()
    assert refused(rl, *args) == "unknown flag: --foo (see '%s --help')" % prog


def test_unknown_shorthand_and_missing_values(rl):
    assert refused(rl, "run", "-x", "busybox") == "unknown shorthand flag: 'x' in -x (see 'rootless run --help')"
    assert refused(rl, "run", "-ix", "busybox") == "unknown shorthand flag: 'x' in -x (see 'rootless run --help')"
    assert refused(rl, "run", "--name") == "flag needs an argument: --name (see 'rootless run --help')"
    assert refused(rl, "run", "-e") == "flag needs an argument: 'e' in -e (see 'rootless run --help')"
    assert refused(rl, "--root") == "flag needs an argument: --root (see 'rootless --help')"


@pytest.mark.parametrize("verb, args, need", [
    ("run", [], "requires at least 1 argument"),
    ("container run", [], "requires at least 1 argument"),
    ("create", [], "requires at least 1 argument"),
    ("start", [], "requires at least 1 argument"),
    ("rm", [], "requires at least 1 argument"),
    ("rmi", [], "requires at least 1 argument"),
    ("image rm", [], "requires at least 1 argument"),
    ("save", [], "requires at least 1 argument"),
    ("inspect", [], "requires at least 1 argument"),
    ("tag", ["a"], "requires 2 arguments"),
    ("tag", ["a", "b", "c"], "requires 2 arguments"),
    ("history", [], "requires 1 argument"),
    ("pull", [], "requires 1 argument"),
    ("push", ["a", "b"], "requires 1 argument"),
    ("search", [], "requires 1 argument"),
    ("images", ["a", "b"], "requires at most 1 argument"),
    ("login", ["a", "b"], "requires at most 1 argument"),
    ("logout", ["a", "b"], "requires at most 1 argument"),
    ("import", [], "requires at least 1 and at most 2 arguments"),
    ("ps", ["x"], "accepts no arguments"),
    ("container ls", ["x"], "accepts no arguments"),
    ("load", ["x"], "accepts no arguments"),
    ("version", ["x"], "accepts no arguments"),
    ("info", ["x"], "accepts no arguments"),
    ("image prune", ["x"], "accepts no arguments"),
    ("system df", ["x"], "accepts no arguments"),
])
def test_argument_counts_in_dockers_words(rl, verb, args, need):
    prog = "rootless " + verb
    assert refused(rl, *(verb.split() + args)) == "'%s' %s (see '%s --help')" % (prog, need, prog)


def test_a_flag_error_comes_before_the_argument_count(rl):
    """Docker parses the flags first: ``run --foo`` is about --foo, not the missing image."""
    assert refused(rl, "run", "--foo") == "unknown flag: --foo (see 'rootless run --help')"
    assert refused(rl, "tag", "a", "--foo") == "unknown flag: --foo (see 'rootless tag --help')"
    assert refused(rl, "--foo", "run") == "unknown flag: --foo (see 'rootless --help')"
    assert refused(rl, "run", "--network", "nope", "--foo", "busybox").startswith("unknown flag: --foo")


def test_long_flags_are_never_abbreviated(rl):
    assert refused(rl, "run", "--priv", "busybox") == "unknown flag: --priv (see 'rootless run --help')"
    assert refused(rl, "images", "--dig") == "unknown flag: --dig (see 'rootless images --help')"
    assert refused(rl, "--deb", "version") == "unknown flag: --deb (see 'rootless --help')"
    assert refused(rl, "run", "--stop-sig", "HUP", "busybox").startswith("unknown flag: --stop-sig ")


def test_docker_flags_rootless_lacks_say_so(rl):
    run = " (see 'rootless run --help')"
    assert refused(rl, "run", "--ulimit", "nofile=10", "busybox") == "--ulimit is not supported yet" + run
    assert refused(rl, "run", "--ulimit=nofile=10", "busybox") == "--ulimit is not supported yet" + run
    assert refused(rl, "run", "-a", "stdout", "busybox") == "-a (--attach) is not supported yet" + run
    assert refused(rl, "container", "create", "--shm-size", "1g", "busybox") == \
        "--shm-size is not supported yet (see 'rootless container create --help')"
    assert refused(rl, "-H", "tcp://x", "ps") == "-H (--host) is not supported yet (see 'rootless --help')"
    assert refused(rl, "pull", "--disable-content-trust", "x") == \
        "--disable-content-trust is not supported yet (see 'rootless pull --help')"
    # a typo stays a typo, even where Docker has a flag of that letter elsewhere
    assert refused(rl, "run", "--volumes", "busybox") == "unknown flag: --volumes" + run


def test_docker_commands_rootless_lacks_say_so(rl):
    assert refused(rl, "build", ".") == "rootless has no 'build' command yet (see 'rootless --help')"
    assert refused(rl, "image", "build", ".") == \
        "rootless has no 'image build' command yet (see 'rootless image --help')"
    assert refused(rl, "network", "ls") == "rootless has no 'network' command yet (see 'rootless --help')"
    assert refused(rl, "frobnicate") == "unknown command: rootless frobnicate (see 'rootless --help')"
    assert refused(rl, "container", "frob") == \
        "unknown command: rootless container frob (see 'rootless container --help')"


def test_bad_boolean_values_are_refused(rl):
    assert refused(rl, "run", "--rm=yes", "busybox") == \
        'invalid argument "yes" for "--rm" flag: expected true or false (see \'rootless run --help\')'
    assert refused(rl, "run", "-t=2", "busybox") == \
        'invalid argument "2" for "-t, --tty" flag: expected true or false (see \'rootless run --help\')'
    assert refused(rl, "images", "--no-trunc=") == \
        'invalid argument "" for "--no-trunc" flag: expected true or false (see \'rootless images --help\')'


@pytest.fixture(scope="module")
def brl(tmp_path_factory, test_images):
    """A storage root with busybox loaded, for the flags that need a real container."""
    yield from loaded_root(tmp_path_factory, test_images, "usage")


def containers(brl):
    return brl.out("ps", "-a", "-q").split()


def test_boolean_flags_take_dockers_values(brl):
    assert containers(brl) == []
    brl("run", "--rm=false", "busybox", "true")
    assert len(containers(brl)) == 1  # =false kept it
    for word in ("true", "1", "t", "T", "TRUE", "True"):
        brl("run", "--rm=" + word, "busybox", "true")
    brl("run", "--rm", "busybox", "true")
    assert len(containers(brl)) == 1  # each of those removed its container
    for word in ("0", "f", "F", "FALSE", "False"):
        brl("run", "--rm=" + word, "busybox", "true")
    assert len(containers(brl)) == 6
    brl("rm", *containers(brl))
    # -i=false leaves stdin out; -i=true forwards it
    assert brl.out("run", "--rm", "-i=false", "busybox", "cat", input=b"in\n") == ""
    assert brl.out("run", "--rm", "-i=true", "busybox", "cat", input=b"in\n") == "in\n"
    # after the image, the words are the command's, whatever they look like
    assert brl.out("run", "--rm", "busybox", "echo", "--rm=yes", "--foo").strip() == "--rm=yes --foo"
    full = brl.out("images", "-q", "--no-trunc=true").strip()
    assert full.startswith("sha256:") and brl.out("images", "-q", "--no-trunc=0").strip() == full[7:19]


def test_flags_between_arguments_as_docker(brl):
    a = brl.out("create", "busybox", "true").strip()
    b = brl.out("create", "busybox", "true").strip()
    assert brl.out("rm", a, "-f", b).split() == [a, b]
    assert containers(brl) == []


def test_interactive_tty_needs_a_terminal_and_creates_nothing(brl, tmp_path):
    record_dirs = sorted(os.listdir(brl.root))
    for args in (["-i", "-t"], ["-it"], ["-ti"], ["--interactive", "--tty=true"]):
        for stdin in (subprocess.DEVNULL, subprocess.PIPE):
            proc = brl("run", *args, "busybox", "true", check=False, stdin=stdin)
            assert proc.returncode == 125 and proc.stderr == b"rootless: error: the input device is not a TTY\n", args
    assert containers(brl) == [] and sorted(os.listdir(brl.root)) == record_dirs
    # -t alone or -i alone is fine without a terminal
    assert brl("run", "--rm", "-t", "busybox", "true", stdin=subprocess.DEVNULL).returncode == 0
    assert brl("run", "--rm", "-i", "-t=false", "busybox", "true", stdin=subprocess.DEVNULL).returncode == 0
