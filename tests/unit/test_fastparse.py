"""cli.fastparse reads a ``run`` line as argparse does, or leaves it to argparse."""

import random
import subprocess
import sys

import pytest

from conftest import REPO
from rootless.cli import containers, fastparse
from rootless.cli.parser import build_parser
from rootless.errors import UsageError


def argparse_reads(argv):
    try:
        return vars(build_parser(argv).parse_args(argv))
    except UsageError:
        return None


COMMON = [
    ["run", "--rm", "busybox", "true"],
    ["--root", "/tmp/r", "run", "--rm", "--network", "host", "--storage-driver", "overlay", "busybox", "true"],
    ["--root=/tmp/r", "-D", "run", "-it", "--name", "web", "-e", "A=1", "-e", "B", "-v", "/a:/b:ro", "busybox", "sh"],
    ["run", "-d", "-p", "8080:80", "--restart=always", "nginx"],
    ["run", "--rm=false", "--tty=1", "busybox"],
    ["run", "--net=none", "--env=X=y", "--label", "k=v", "-l", "a", "img", "cmd", "--rm", "-x", "--", "y"],
    ["run", "busybox", "--rm"],
    ["run", "-dit", "--init", "--privileged", "--read-only", "img"],
    ["run", "-m", "50m", "--cpus", "0.5", "--pids-limit", "10", "img"],
    ["-l", "debug", "run", "-h", "host", "-w", "/w", "-u", "1:2", "img", ""],
    ["run", "--pull", "never", "--userns", "keep-id", "--log-opt", "max-size=1m", "--tmpfs", "/t", "img"],
    ["run", ""],
]


@pytest.mark.parametrize("argv", COMMON, ids=range(len(COMMON)))
def test_usual_lines_are_read_as_argparse_reads_them(argv):
    ours = fastparse.parse_run(argv)
    assert ours is not None
    assert vars(ours) == argparse_reads(argv)


LEFT = [
    ["run"], ["run", "--help"], ["run", "--rmm", "img"], ["run", "--name"], ["run", "-e", "-x", "img"],
    ["run", "--", "img"], ["run", "--pull", "sometimes", "img"], ["run", "-eA=1", "img"], ["run", "-t=1", "img"],
    ["run", "--rm=maybe", "img"], ["run", "--pids-limit", "-1", "img"], ["-x", "run", "img"], ["--version", "run"],
    ["run", "-iz", "img"], ["run", "-1", "img"], ["ps"],
]


@pytest.mark.parametrize("argv", LEFT, ids=range(len(LEFT)))
def test_other_lines_are_left_to_argparse(argv):
    assert fastparse.parse_run(argv) is None


def test_random_lines_agree_with_argparse():
    """Lines made of run's own options in every spelling (and a few wrong words): each
    line read here is read the same by argparse, and many are read here."""
    spec = fastparse.Recorder()
    containers._run_args(spec)
    names = sorted(n for n in spec.options if n != "--help")
    words = ["x", "a=b", "/p:/q", "-", "", "--", "-z", "0", "80:80", "host", "none", "overlay", "never", "1g"]
    rng = random.Random(1234)
    read = 0
    for _ in range(3000):
        argv = rng.choice([[], ["-D"], ["--root", "/r"], ["--root=/r", "-l", "warn"]]) + ["run"]
        for _ in range(rng.randint(0, 6)):
            name = rng.choice(names)
            option = spec.options[name]
            if option.const is not None:
                argv.append(name + ("=" + rng.choice(["true", "0", "F", "no"]) if rng.random() < 0.2 else ""))
            elif option.choices and rng.random() < 0.8:
                value = rng.choice(option.choices + ["bad"])
                argv += [name + "=" + value] if name.startswith("--") and rng.random() < 0.5 else [name, value]
            else:
                value = rng.choice(words)
                argv += [name + "=" + value] if name.startswith("--") and rng.random() < 0.5 else [name, value]
        if rng.random() < 0.1:
            argv.append(rng.choice(["-it", "-dt", "-tP", "-iz"]))
        argv += rng.choice([[], ["img"], ["img", "sh", "-c", "x"], ["img", "--rm", "-e"]])
        ours = fastparse.parse_run(argv)
        if ours is not None:
            read += 1
            assert vars(ours) == argparse_reads(argv), argv
    assert read > 1000  # (a third of the words are wrong on purpose)


def test_a_run_parsed_here_imports_no_argparse(tmp_path):
    probe = ("import sys; from rootless.cli import fastparse\n"
             "assert fastparse.parse_run(['run', '--rm', '-e', 'A=1', 'busybox', 'true']) is not None\n"
             "print(sorted(m for m in ('argparse', 'rootless.cli.parser') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": REPO}).stdout
    assert out.strip() == "[]"
