"""version, info, --help and the error path, driven through the built zipapp."""

import json
import os
import re
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
    for args in ([], ["images"], ["load"], ["save"], ["image", "inspect"], ["system", "df"], ["info"],
                 ["inspect"], ["container", "inspect"]):
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


def test_info_has_dockers_layout_then_ours(tmp_path):
    root = str(tmp_path / "r")
    proc = run("--root", root, "info")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and lines[0] == "Client:"
    server, ours = lines.index("Server:"), lines.index("Rootless:")
    assert server < ours and lines[server + 1:server + 6] == [
        " Containers: 0", "  Running: 0", "  Paused: 0", "  Stopped: 0", " Images: 0"]
    for label in ("Server Version", "Storage Driver", "Logging Driver", "Cgroup Driver", "Cgroup Version",
                  "Kernel Version", "Operating System", "OSType", "Architecture", "CPUs", "Total Memory",
                  "Name", "ID", "Docker Root Dir"):
        assert [l for l in lines[server:ours] if l.startswith(" %s: " % label)], label
    assert " Docker Root Dir: %s" % root in lines and "  Backing Filesystem: " in "\n".join(lines)
    assert re.search(r"^ Total Memory: \d+(\.\d+)?[KMGT]iB$", proc.stdout, re.M), proc.stdout
    info = json.loads(run("--root", root, "info", "-f", "{{json .}}").stdout)
    for key in ("Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images", "Driver",
                "DriverStatus", "LoggingDriver", "CgroupDriver", "CgroupVersion", "SecurityOptions",
                "KernelVersion", "OperatingSystem", "OSType", "Architecture", "NCPU", "MemTotal",
                "DockerRootDir", "Name", "ID", "RegistryConfig", "Warnings", "StorageRoot", "Probes"):
        assert key in info, key
    assert info["DockerRootDir"] == root and info["Architecture"] == os.uname().machine
    assert proc.stderr == "".join(w + "\n" for w in info["Warnings"])  # Docker's: on stderr


def test_info_shows_the_registry_configuration(tmp_path):
    config = tmp_path / "config"
    (config / "rootless").mkdir(parents=True)
    (config / "rootless" / "registries.json").write_text(json.dumps({
        "registry-mirrors": ["https://mirror.example.com"], "insecure-registries": ["reg.local:5000", "10.0.0.0/8"]}))
    env = {"XDG_CONFIG_HOME": str(config)}
    text = run("--root", str(tmp_path / "r"), "info", env=env).stdout
    assert "\n Insecure Registries:\n  reg.local:5000\n  10.0.0.0/8\n" in text, text
    assert "\n Registry Mirrors:\n  https://mirror.example.com\n" in text, text
    registry = json.loads(run("--root", str(tmp_path / "r"), "info", "-f", "{{json .RegistryConfig}}", env=env).stdout)
    assert registry["Mirrors"] == ["https://mirror.example.com"] and registry["InsecureRegistryCIDRs"] == ["10.0.0.0/8"]
    assert registry["IndexConfigs"]["reg.local:5000"]["Secure"] is False
    (config / "rootless" / "registries.json").write_text("{not json")
    proc = run("--root", str(tmp_path / "r"), "info", env=env)
    assert proc.returncode == 0 and "WARNING: invalid JSON in registry configuration" in proc.stderr


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
