"""The cost of the run path (docs/performance.md): what a plain ``run --rm`` imports, the
zipapp's table of compiled modules, and the parts made cheaper, as the unprivileged user."""

import os
import subprocess
import sys

import pytest

from conftest import REPO, loaded_root, need
from rootless import fsutil
from rootless.runtime import state

# Each was on the path of `run --rm busybox true` and is not needed there (see
# docs/performance.md for what each cost).
NOT_ON_THE_RUN_PATH = ("hashlib", "threading", "typing", "shutil", "socket", "random", "gettext",
                       "termios", "tempfile", "subprocess", "rootless.image.pull",
                       "rootless.runtime.terminal", "rootless.runtime.monitor_client",
                       "argparse", "json", "re", "enum", "signal", "rootless.cli.parser")


@pytest.fixture(scope="module")
def prl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "runpath")


def imported_by(argv):
    """The modules ``python3 -S -X importtime`` reports for argv (and its exit code)."""
    proc = subprocess.run([sys.executable, "-S", "-X", "importtime"] + argv, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO))
    names = [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return proc.returncode, names


def test_a_plain_run_imports_none_of_what_it_does_not_need(prl):
    """What ``run`` imports beyond what the build's launcher imports for ``version`` (the
    stdlib zipapp's imports none of these; shiv's bootstrap imports hashlib, typing...)."""
    prl("run", "--rm", "busybox", "true")  # the first run of a store probes it (cached after)
    code, names = imported_by(prl.base[1:] + ["run", "--rm", "busybox", "true"])
    assert code == 0
    assert "rootless.runtime.launch" in names  # the run did happen, with its imports
    _, launcher = imported_by(prl.base[1:] + ["version"])
    assert sorted(set(NOT_ON_THE_RUN_PATH) & (set(names) - set(launcher))) == []
    # argparse is the launcher's own (``version`` parses with it): so, of the stdlib
    # zipapp (shiv's bootstrap imports typing, json and re itself), none of these at all.
    if "typing" not in launcher:
        assert sorted({"argparse", "json", "re", "enum", "signal"} & set(names)) == []


def test_the_zipapp_imports_its_modules_from_its_table(tmp_path):
    """One stored table of compiled code; __file__ as zipimport sets it; sources for
    tracebacks. On another interpreter (magic) nothing is installed: covered by reading
    the table's magic, which is the building interpreter's."""
    pyz = str(tmp_path / "r.pyz")
    subprocess.run([sys.executable, os.path.join(REPO, "build_zipapp.py"), "-o", pyz], check=True,
                   capture_output=True)
    probe = ("import linecache, sys, zipimport\n"
             "z = zipimport.zipimporter(sys.argv[1])\n"
             "main = z.get_source('__main__').replace('exit_now(main())', '')\n"
             "exec(compile(main, '__main__', 'exec'), {'__loader__': z, '__name__': 'probe'})\n"
             "import rootless.cli as c, rootless.runtime.state as s\n"
             "print(type(c.__spec__.loader).__name__, c.__file__, s.__file__)\n"
             "print(linecache.getline(c.main.__code__.co_filename, c.main.__code__.co_firstlineno, c.__dict__).strip())\n"
             "print(sorted(m for m in ('rootless.image.store', 'rootless.bundle.create') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-S", "-c", probe, pyz], capture_output=True, text=True, check=True)
    loader, cli_file, state_file = proc.stdout.splitlines()[0].split()
    assert loader == "_Modules"
    assert cli_file == pyz + "/rootless/cli/__init__.py"
    assert state_file == pyz + "/rootless/runtime/state.py"
    assert proc.stdout.splitlines()[1].startswith("def main(")
    assert proc.stdout.splitlines()[2] == "[]"  # imported when asked, not all at once


def test_the_zipapp_still_runs_from_its_sources_without_the_table(tmp_path):
    pyz = str(tmp_path / "r.pyz")
    subprocess.run([sys.executable, os.path.join(REPO, "build_zipapp.py"), "--no-pyc", "-o", pyz], check=True,
                   capture_output=True)
    proc = subprocess.run([sys.executable, pyz, "version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "Version:" in proc.stdout


def test_exit_keeps_its_code_and_output_through_a_pipe(prl):
    proc = subprocess.run(prl.base + ["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"],
                          capture_output=True, text=True, env=prl.env())
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "out\n", "err\n")
    head = subprocess.run(prl.base + ["images"], capture_output=True, text=True, env=prl.env())
    assert head.returncode == 0 and head.stdout.startswith("REPOSITORY")


def test_remove_tree_opens_modes_follows_no_symlink_and_names_what_it_could_not_remove(tmp_path):
    need(os.getuid() != 0, "permissions are not enforced for root")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept").write_text("x")
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_text("x")
    (top / "link").symlink_to(outside)
    (top / "a" / "dirlink").symlink_to(outside, target_is_directory=True)
    (top / "a" / "b").chmod(0o500)
    (top / "a").chmod(0o000)
    fsutil.remove_tree(str(top))
    assert not top.exists()
    assert (outside / "kept").read_text() == "x"
    # What cannot be removed is named in full: root's files stand for those of sub-ids.
    with pytest.raises(PermissionError) as failed:
        fsutil.remove_tree("/etc")
    assert str(failed.value.filename).startswith("/etc/")


def test_a_torn_record_reads_as_no_container(tmp_path):
    from rootless.paths import resolve
    containers = state.Containers(resolve(str(tmp_path / "root")))
    cdir = os.path.join(containers.top, "a" * 64)
    os.makedirs(cdir)
    with open(os.path.join(cdir, state.RECORD), "w") as f:
        f.write("")  # what a power cut can leave of a record written without fsync
    assert containers.read("a" * 64) is None
    assert containers.all() == []


def test_generated_names_are_free_and_well_formed():
    from rootless import names
    taken = set()
    for _ in range(200):
        name = names.generate(taken.__contains__)
        assert name not in taken
        left, _, right = name.partition("_")
        assert left in names.ADJECTIVES and right.rstrip("0123456789") in names.SURNAMES
        taken.add(name)
