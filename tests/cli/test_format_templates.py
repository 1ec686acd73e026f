"""--format templates through the built zipapp: one engine for every verb, its errors on the
CLI's error path (one line, exit 125, nothing on stdout), and no engine without --format."""

import os
import subprocess
import sys

from conftest import REPO, rootless_command


def run(*args):
    return subprocess.run(rootless_command() + list(args), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO))


def test_version_template_with_range_printf_and_pipelines():
    proc = run("version", "--format", '{{range $k, $v := .Client}}{{if eq $k "Os" "Arch"}}{{$k}}={{$v}};{{end}}{{end}}'
               '{{printf " %s" .Client.Os | upper}}')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Arch=") and proc.stdout.endswith(";Os=linux; LINUX\n")


def test_version_and_info_are_strict_like_dockers_structs(tmp_path):
    for args in (["version", "--format", "{{.Client.Nope}}"],
                 ["--root", str(tmp_path), "info", "--format", "{{.Nope}}"]):
        proc = run(*args)
        assert proc.returncode == 125 and proc.stdout == ""
        assert "can't evaluate field Nope" in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr


def test_a_bad_template_is_one_line_and_125_even_with_nothing_to_list(tmp_path):
    for args in (["ps", "-a"], ["images"], ["system", "df"]):
        proc = run("--root", str(tmp_path), *args, "--format", "{{range .Names}}")
        assert proc.returncode == 125 and proc.stdout == "", (args, proc.stdout)
        err = proc.stderr.strip()
        assert err.startswith("rootless: error: template parsing error: template: :1:0: at <{{range .Names}}>: ")
        assert "{{range}} has no {{end}}" in err and "\n" not in err, err


def test_listing_templates_render_rows(tmp_path):
    proc = run("--root", str(tmp_path), "system", "df", "--format",
               '{{if eq .Type "Images"}}{{.Type}}:{{.TotalCount}}{{else}}{{lower .Type | printf "%.5s"}}{{end}}')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n") == ["Images:0", "conta", "local", "build", ""]


def test_no_engine_without_format(tmp_path):
    code = ("import sys; sys.argv=['rootless'] + sys.argv[1:]; from rootless.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(str('rootless.cli.template' in sys.modules))")
    for args in (["version"], ["--root", str(tmp_path), "ps", "-a"], ["--root", str(tmp_path), "images"]):
        proc = subprocess.run([sys.executable, "-S", "-c", code] + args, capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=REPO))
        assert proc.stderr.splitlines()[-1] == "False", (args, proc.stderr)
    proc = subprocess.run([sys.executable, "-S", "-c", code, "version", "--format", "{{.Client.Os}}"],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.stderr.splitlines()[-1] == "True"
