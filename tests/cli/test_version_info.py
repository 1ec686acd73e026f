"""version, info, --help and the error path, driven through the built zipapp."""

import json
import os
import subprocess
import sys

from conftest import REPO, rootless_command


def run(*args, env=None):
    return subprocess.run(rootless_command() + list(args), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO, **(env or {})))


def test_version_prints_and_exits_zero():
    proc = run("version")
    assert proc.returncode == 0
    assert "Version:" in proc.stdout
    assert run("version", "--format", "{{.Client.Version}}").stdout.strip() == run("-v").stdout.split()[-1]


def test_version_and_ps_paths_import_no_heavy_modules():
    code = ("import sys; sys.argv=['rootless','version']; from rootless.cli import main; main(); "
            "print(sorted(m for m in ('tarfile','urllib','ctypes','urllib.request') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_help_everywhere():
    for args in ([], ["images"], ["load"], ["save"], ["image", "inspect"], ["system", "df"], ["info"]):
        proc = run(*(args + ["--help"]))
        assert proc.returncode == 0, args
        assert "usage:" in proc.stdout


def test_info_reports_storage_root_and_fs(tmp_path):
    proc = run("--root", str(tmp_path / "r"), "info", "--format", "json")
    info = json.loads(proc.stdout)
    assert info["StorageRoot"] == str(tmp_path / "r")
    assert info["StorageRootFilesystem"] not in ("", "unknown")
    assert info["RunDir"]
    text = run("--root", str(tmp_path / "r"), "info").stdout
    assert "Storage root: %s" % (tmp_path / "r") in text


def test_default_root_follows_xdg_and_rootless_root(tmp_path):
    xdg = tmp_path / "data"
    info = json.loads(run("info", "-f", "json", env={"XDG_DATA_HOME": str(xdg), "ROOTLESS_ROOT": ""}).stdout)
    assert info["StorageRoot"] == str(xdg / "rootless")
    info = json.loads(run("info", "-f", "json", env={"ROOTLESS_ROOT": str(tmp_path / "x")}).stdout)
    assert info["StorageRoot"] == str(tmp_path / "x")


def test_unknown_command_and_flag_are_one_line_errors_with_125():
    for args in (["frobnicate"], ["images", "--bogus"], ["load", "-i"]):
        proc = run(*args)
        assert proc.returncode == 125, args
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rootless: error:"), proc.stderr
