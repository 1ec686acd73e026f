"""The README's quick start works verbatim for a new, unprivileged user.

The commands are read from README.md's "Quick start" section, not restated here, and run
with /bin/sh in a fresh copy of the repository (no rootless.pyz, no busybox.tar) with an
empty storage root: if the README names a file the user does not have, or a command that
does not work, these tests fail. The `-it` command gets a real terminal (a pty); the test
types `echo hi; exit` at the container's shell and reads the answer.
"""

import errno
import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import termios
import time

import pytest

from conftest import REPO
from registries import make_registry  # noqa: F401  (a pytest fixture)

PROMPT = b"/ # "
TYPED = b"echo hi; exit\n"


def quick_start_blocks():
    """The ```sh blocks of the Quick start section, as lists of non-empty lines."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    assert "\n## Quick start\n" in text, "README.md has no Quick start section"
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def main_commands(which):
    """The two commands of block ``which`` (0: without a registry, 1: the Docker Hub form);
    the README promises two, the second running the shell."""
    blocks = quick_start_blocks()
    assert len(blocks) == 2, "the Quick start should show two forms, found %d blocks" % len(blocks)
    block = blocks[which]
    assert len(block) == 2, "the quick start promises two commands: %r" % block
    assert block[1].split("#")[0].rstrip().endswith("run -it --rm busybox sh"), block[1]
    return block


@pytest.fixture
def newcomer(tmp_path, unprivileged):
    """(a fresh copy of the repository, the environment of a user new to rootless)."""
    repo = tmp_path / "rootless"
    shutil.copytree(REPO, str(repo), symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "*.pyz", "__pycache__", ".pytest_cache", "busybox.tar"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOTLESS_") and k != "PYTHONPATH"}
    home = tmp_path / "home"
    home.mkdir()
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local/share"), XDG_CONFIG_HOME=str(home / ".config"))
    env.pop("XDG_RUNTIME_DIR", None)
    yield repo, env
    subprocess.run(["python3", str(repo / "rootless.pyz"), "system", "reset", "--force"], env=env,
                   capture_output=True)


def run_line(line, repo, env):
    proc = subprocess.run(["/bin/sh", "-c", line], cwd=str(repo), env=env, capture_output=True, timeout=600)
    assert proc.returncode == 0, "%r exited %d:\n%s%s" % (line, proc.returncode, proc.stdout.decode(),
                                                         proc.stderr.decode())
    return proc


def run_in_terminal(line, repo, env, timeout=120):
    """Run ``line`` with a pty as its controlling terminal; type TYPED at the container's
    prompt. Returns (exit status, everything the terminal showed)."""
    pid, master = pty.fork()
    if pid == 0:  # the child: the pty is its stdin, stdout, stderr and controlling terminal
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            os.chdir(str(repo))
            os.execve("/bin/sh", ["/bin/sh", "-c", line], env)
        finally:
            os._exit(127)
    seen, typed = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError as e:
                if e.errno != errno.EIO:  # EIO: the other side closed, all is read
                    raise
                chunk = b""
            if not chunk:
                break
            seen += chunk
            if not typed and PROMPT in seen:
                os.write(master, TYPED)
                typed = True
        else:
            os.kill(pid, 9)
            raise AssertionError("%r did not finish in %ds; the terminal showed:\n%s"
                                 % (line, timeout, seen.decode(errors="replace")))
    finally:
        os.close(master)
    _, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    return code, seen.decode(errors="replace")


def assert_shell_answered(status, shown, line):
    assert PROMPT.decode() in shown, "no container shell prompt from %r:\n%s" % (line, shown)
    lines = [l.strip() for l in shown.replace("\r", "").split("\n")]
    assert "hi" in lines, "the container's shell did not answer `echo hi`:\n%s" % shown
    assert status == 0, "%r exited %d:\n%s" % (line, status, shown)


def test_the_quick_start_works_verbatim_without_a_registry(newcomer):
    repo, env = newcomer
    setup, start = main_commands(0)
    run_line(setup, repo, env)
    assert (repo / "rootless.pyz").exists()
    status, shown = run_in_terminal(start, repo, env)
    assert_shell_answered(status, shown, start)
    # --rm: nothing of the container is left; the image stays for the next time
    pyz = ["python3", str(repo / "rootless.pyz")]
    assert subprocess.run(pyz + ["ps", "-a", "-q"], env=env, capture_output=True).stdout == b""
    images = subprocess.run(pyz + ["images", "--format", "{{.Repository}}:{{.Tag}}"], env=env,
                            capture_output=True).stdout.decode().split()
    assert images == ["busybox:latest"]


def test_the_docker_hub_form_works_verbatim_through_a_mirror(newcomer, make_registry, test_images):
    """The second block pulls docker.io/library/busybox; here a local registry, set as the
    Docker Hub mirror in registries.json, serves it (the tests have no outside network, so a
    pull that went past the mirror fails)."""
    repo, env = newcomer
    mirror = make_registry("http")
    mirror.push_archive(os.path.join(test_images, "busybox-docker.tar"), "library/busybox:latest")
    config = os.path.join(env["XDG_CONFIG_HOME"], "rootless")
    os.makedirs(config)
    with open(os.path.join(config, "registries.json"), "w") as f:
        json.dump({"registry-mirrors": [mirror.url]}, f)
    build, start = main_commands(1)
    assert "busybox-image" not in build and "load" not in start
    run_line(build, repo, env)
    status, shown = run_in_terminal(start, repo, env)
    assert_shell_answered(status, shown, start)
