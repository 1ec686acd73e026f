"""The runtime runs a bundle written by hand: config.json is its only input.

No image store, no container record: a directory with a rootfs (the host's static
busybox) and a config.json in the OCI runtime spec's own terms, run through the runtime's
API as the unprivileged user. And the runtime's imports flow one way: it never imports
the image store, the bundle generator or the command line.
"""

import ast
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, need

RUNNER = """
import sys
from rootless.runtime.config import Bundle
from rootless.runtime.foreground import Foreground
sys.exit(Foreground(Bundle.load(sys.argv[1]), interactive=False).run())
"""


def busybox_bundle(tmp_path, args, **linux):
    busybox = shutil.which("busybox")
    need(busybox is not None and _static(busybox), "a static busybox on the host (Debian: busybox-static)")
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(busybox, bundle / "rootfs" / "bin" / "busybox")
    os.symlink("busybox", bundle / "rootfs" / "bin" / "sh")
    config = {
        "ociVersion": "1.0.2",
        "process": {"args": args, "env": ["PATH=/bin"], "cwd": "/",
                    "user": {"uid": 0, "gid": 0},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 77}]},
        "root": {"path": "rootfs"},
        "hostname": "handmade",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/etc/greeting", "type": "bind", "source": "greeting",
                    "options": ["bind", "ro"]}],
        "linux": dict({"namespaces": [{"type": t} for t in ("user", "mount", "pid", "uts")]}, **linux),
    }
    (bundle / "greeting").write_text("hello from the bundle\n")
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def _static(path):
    try:
        with open(path, "rb") as f:
            return b"ld-linux" not in f.read(1 << 20)
    except (OSError, TypeError):
        return False


def run_bundle(bundle):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-c", RUNNER, str(bundle)], capture_output=True,
                          env=env, timeout=60)


def test_a_hand_written_bundle_runs(tmp_path, unprivileged):
    bundle = busybox_bundle(tmp_path, ["sh", "-c", "hostname; cat /etc/greeting; echo pid $$; "
                                       "id -u; ulimit -n; test -e /proc/1/ns/uts && echo proc; exit 3"])
    proc = run_bundle(bundle)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.decode().split("\n") == ["handmade", "hello from the bundle", "pid 1", "0",
                                                "77", "proc", ""]


def test_the_runtime_unshares_what_linux_namespaces_lists(tmp_path, unprivileged):
    """Without "pid" and "uts" in linux.namespaces the container shares the host's."""
    bundle = busybox_bundle(tmp_path, ["sh", "-c", "echo $$; hostname"],
                            namespaces=[{"type": "user"}, {"type": "mount"}])
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"] = config["mounts"][1:]  # a new /proc needs a pid namespace of its own
    (bundle / "config.json").write_text(json.dumps(config))
    proc = run_bundle(bundle)
    assert proc.returncode == 0, proc.stderr
    pid, hostname = proc.stdout.decode().split()
    assert int(pid) > 1 and hostname == os.uname().nodename


def test_a_bundle_without_a_user_namespace_is_refused(tmp_path, unprivileged):
    bundle = busybox_bundle(tmp_path, ["true"], namespaces=[{"type": "mount"}])
    proc = run_bundle(bundle)
    assert proc.returncode == 1 and b"needs a new user namespace" in proc.stderr


def _imports(package):
    found = {}
    base = os.path.join(REPO, "rootless", package)
    for name in sorted(os.listdir(base)):
        if name.endswith(".py"):
            tree = ast.parse(open(os.path.join(base, name)).read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    found.setdefault(node.module, []).append(name)
                    found.update({"%s.%s" % (node.module, a.name): [name] for a in node.names})
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        found.setdefault(alias.name, []).append(name)
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("runtime", ("rootless.bundle", "rootless.image", "rootless.cli")),
    ("linux", ("rootless.bundle", "rootless.image", "rootless.cli", "rootless.runtime", "rootless.storage")),
    ("storage", ("rootless.bundle", "rootless.image", "rootless.cli", "rootless.runtime")),
    ("bundle", ("rootless.cli", "rootless.image")),
])
def test_imports_flow_one_way(package, forbidden):
    bad = {module: where for module, where in _imports(package).items()
           if module.startswith(forbidden)}
    assert bad == {}
