"""Shared fixtures.

* ``rl``: runs the rootless command line against a private storage root, through the built
  ``rootless.pyz`` when it exists (as users run it), else ``python3 -m rootless``.
* ``test_images``: the directory of images built by ``scripts/build-test-images``.
* ``unprivileged``: rootless behaviour is only proven as an ordinary user.

Under CI (``ROOTLESS_CI=1``, set by ``.ci/run``) every capability the tests need is installed,
so a missing one fails the test instead of skipping it.

Tests talk to loopback only: an audit hook refuses any connection this process makes to
another address (and ``.ci/run`` runs the suite in a loopback-only network namespace,
which fences the processes the tests start as well).
"""

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYZ = os.environ.get("ROOTLESS_PYZ") or os.path.join(REPO, "rootless.pyz")
IMAGES = os.environ.get("ROOTLESS_TEST_IMAGES", "/var/tmp/rootless-test-images")
IN_CI = os.environ.get("ROOTLESS_CI") == "1"
sys.path.insert(0, os.path.join(REPO, "tests"))


def _loopback_only(event, args):
    if event != "socket.connect":
        return
    sock, address = args
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        loopback = ipaddress.ip_address(address[0].split("%")[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise RuntimeError("tests may connect to loopback only, not to %s" % (address,))


sys.addaudithook(_loopback_only)

# tests/vm run inside the VMs of scripts/testbed (it sets ROOTLESS_VM_CONFIG), each file on
# the host that its configuration makes; on this machine they are not collected.
VM_CONFIG = os.environ.get("ROOTLESS_VM_CONFIG", "")
collect_ignore = [] if VM_CONFIG else ["vm"]


def until(probe, timeout=10.0, what="the condition"):
    """``probe()``'s first true result, asked every 20 ms; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.02)


def need(condition: bool, reason: str) -> None:
    """Skip when a capability is missing, except under CI, where it must be present."""
    if not condition:
        if IN_CI:
            pytest.fail("CI must provide this: " + reason)
        pytest.skip(reason)


def rootless_command():
    if os.path.exists(PYZ):
        return [sys.executable, PYZ]
    return [sys.executable, "-m", "rootless"]


class Rootless:
    """Runs ``rootless --root ROOT ...`` and returns the CompletedProcess."""

    def __init__(self, root: str):
        self.root = root
        self.base = rootless_command() + ["--root", root]

    def env(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO
        return env

    def __call__(self, *args, input=None, check=True, timeout=600, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.run(self.base + list(args), input=input, timeout=timeout,
                              env=self.env(), **kw)
        if check and proc.returncode != 0:
            raise AssertionError("rootless %s exited %d\nstdout: %s\nstderr: %s" % (
                " ".join(args), proc.returncode, (proc.stdout or b"").decode(errors="replace")[-2000:],
                (proc.stderr or b"").decode(errors="replace")[-2000:]))
        return proc

    def out(self, *args, **kw) -> str:
        return self(*args, **kw).stdout.decode()

    def popen(self, *args, **kw):
        return subprocess.Popen(self.base + list(args), env=self.env(), **kw)


def loaded_root(tmp_path_factory, test_images, name: str, archives=("busybox-docker.tar",)):
    """The body of a module fixture: a private storage root with test images loaded, as
    the unprivileged user; reset when the module is done (``yield from`` it)."""
    need(os.getuid() != 0, "containers must be run as an unprivileged user (bash .ci/run does)")
    root = Rootless(str(tmp_path_factory.mktemp(name) / "root"))
    for archive in archives:
        root("load", "-i", os.path.join(test_images, archive))
    yield root
    root("system", "reset", "--force", check=False)


@pytest.fixture
def rl(tmp_path):
    return Rootless(str(tmp_path / "root"))


@pytest.fixture
def unprivileged():
    need(os.getuid() != 0, "rootless behaviour must be tested as an unprivileged user "
         "(bash .ci/run runs these tests as one)")


@pytest.fixture(scope="session")
def test_images():
    need(os.path.exists(os.path.join(IMAGES, "MANIFEST.txt")),
         "test images missing in %s: run scripts/build-test-images as root" % IMAGES)
    return IMAGES


@pytest.fixture(scope="session")
def image_ids(test_images):
    """Archive name -> the image ID (config digest) skopeo reported when it wrote it."""
    ids = {}
    with open(os.path.join(test_images, "MANIFEST.txt")) as f:
        for line in f:
            if line.strip():
                name, digest = line.split()
                ids[name] = digest
    return ids


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


@pytest.fixture
def podman(tmp_path, unprivileged):
    """podman with a private storage root, as this user (needs subuid ranges)."""
    need(have("podman"), "podman is not installed")
    need(_has_subuid(), "podman needs /etc/subuid ranges for this user")
    import tempfile
    root = tmp_path / "podman-root"
    runroot = tempfile.mkdtemp(prefix="pm-")  # podman refuses a runroot over 50 characters

    def run(*args, check=True):
        cmd = ["podman", "--root", str(root), "--runroot", str(runroot), "--storage-driver", "overlay"] + list(args)
        proc = subprocess.run(cmd, capture_output=True, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError("podman %s: %s" % (" ".join(args), proc.stderr.decode()[-2000:]))
        return proc.stdout.decode()
    yield run
    subprocess.run(["podman", "--root", str(root), "--runroot", runroot, "unshare", "rm", "-rf",
                    str(root), runroot], capture_output=True)


def _has_subuid() -> bool:
    import pwd
    name = pwd.getpwuid(os.getuid()).pw_name
    try:
        with open("/etc/subuid") as f:
            return any(line.split(":")[0] in (name, str(os.getuid())) for line in f)
    except OSError:
        return False
