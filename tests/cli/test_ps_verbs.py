"""ps, rename and container prune through the command line, on a storage root written by
hand (no container runs here; tests/integration/test_ps.py runs real ones)."""

import json
import os
import re
import subprocess
import sys
import time

from conftest import REPO, rootless_command

HEAVY = ("tarfile", "urllib", "urllib.request", "ctypes")


def record(root, name, **kw):
    cid = (name.encode().hex() + "0" * 64)[:64]
    rec = {"version": 1, "id": cid, "name": name, "created": time.time() - 30, "image": "busybox",
           "image_id": "sha256:" + "b" * 64, "command": ["sh", "-c", "exit 3"], "labels": {"team": "hpc"},
           "status": "exited", "started": time.time() - 20, "finished": time.time() - 10, "exit_code": 3,
           "driver": "copy", "idmap": {"mode": "single"}}
    rec.update(kw)
    os.makedirs(os.path.join(root, "containers", cid, "rootfs"))
    with open(os.path.join(root, "containers", cid, "rootfs", "f"), "w") as f:
        f.write("x" * 1500)
    with open(os.path.join(root, "containers", cid, "container.json"), "w") as f:
        json.dump(rec, f)
    return cid


def run(*args, input=None):
    return subprocess.run(rootless_command() + list(args), capture_output=True, text=True, input=input,
                          env=dict(os.environ, PYTHONPATH=REPO, TZ="UTC"))


def test_ps_path_imports_no_heavy_modules(tmp_path):
    record(str(tmp_path), "one")
    for args in (["ps", "-a"], ["ps", "-a", "-s", "--format", "json"], ["ps", "-f", "ancestor=busybox"]):
        code = ("import sys; sys.argv=['rootless','--root',%r] + %r; from rootless.cli import main; main(); "
                "print(sorted(m for m in %r if m in sys.modules))" % (str(tmp_path), args, HEAVY))
        proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=REPO))
        assert proc.stdout.strip().splitlines()[-1] == "[]", (args, proc.stdout, proc.stderr)


def test_ps_of_a_hand_written_record(tmp_path):
    cid = record(str(tmp_path), "one")
    out = run("--root", str(tmp_path), "ps", "-a", "-s").stdout.splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES", "SIZE"]
    # No image store: the image is gone, so IMAGE is the ID the container was made from.
    cells = re.split(r"\s{2,}", out[1])
    assert cells[:3] == [cid[:12], "b" * 12, "\"sh -c 'exit 3'\""] and cells[-2:] == ["one", "1.5kB (virtual 1.5kB)"]
    assert re.fullmatch(r"3\d seconds ago", cells[3]) and re.fullmatch(r"Exited \(3\) 1\d seconds ago", cells[4])
    assert run("--root", str(tmp_path), "container", "ls", "-q").stdout == ""
    assert run("--root", str(tmp_path), "container", "list", "-aq").stdout == cid[:12] + "\n"


def test_rename_then_prune(tmp_path):
    cid = record(str(tmp_path), "one")
    assert run("--root", str(tmp_path), "rename", "one", "two").returncode == 0
    assert run("--root", str(tmp_path), "ps", "-a", "--format", "{{.Names}}").stdout == "two\n"
    proc = run("--root", str(tmp_path), "container", "prune", input="Y\n")
    assert proc.stdout == ("WARNING! This will remove all stopped containers.\n"
                           "Are you sure you want to continue? [y/N] Deleted Containers:\n%s\n\n"
                           "Total reclaimed space: 1.5kB\n" % cid)
    assert not os.path.exists(os.path.join(str(tmp_path), "containers", cid))


def test_help_of_each_verb():
    for args in (["ps"], ["container", "ls"], ["container", "list"], ["container", "ps"], ["rename"],
                 ["container", "rename"], ["container", "prune"]):
        proc = run(*(args + ["--help"]))
        assert proc.returncode == 0 and "usage:" in proc.stdout, args
    assert "--latest" in run("ps", "--help").stdout and "--filter" in run("container", "prune", "--help").stdout
