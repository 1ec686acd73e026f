"""`cp` both ways and `export`, on real containers as the unprivileged test users.

Running containers are copied through their own namespaces, stopped ones through a fresh
mount of their root file system; both are tried on every rootfs driver. The hostile cases
are containers whose paths are symlinks out of them (/data -> /etc, x ->
../../../../etc) and tar streams that climb out: nothing outside the destination, on the
host or in the container, may change. What landed inside a container is looked at from
inside it (a container that prints what it finds), what landed on the host with os.stat.
"""

import gzip
import io
import lzma
import os
import pty
import re
import tarfile
import time

import pytest

from test_detached import detached_root, end_what_is_left
from test_run import my_processes
from test_run import driver  # noqa: F401  (a pytest fixture)


@pytest.fixture(scope="module")
def crl(tmp_path_factory, test_images):
    yield from detached_root(tmp_path_factory, test_images, "cp", ("busybox-docker.tar", "debian-docker.tar"))


@pytest.fixture(scope="module")
def mode(crl):
    found = re.search(r"Id mapping: (\S+)", crl.out("info"))
    assert found
    return found.group(1)


@pytest.fixture(autouse=True)
def no_container_outlives_its_test(crl):
    yield
    end_what_is_left(crl)


# -- helpers ------------------------------------------------------------------------------------

def create(crl, driver, name, script, image="busybox"):
    crl("create", "--name", name, "--storage-driver", driver, image, "sh", "-c", script)
    return name


def run_detached(crl, driver, name, script, ready="/ready", *options):
    """A running container that ran ``script`` (then touched ``ready``) and sleeps."""
    crl("run", "-d", "--name", name, "--storage-driver", driver, *options, "busybox", "sh", "-c",
        "%s; touch %s; exec sleep 1000" % (script, ready))
    wait_running(crl, name, ready)
    return name


def wait_running(crl, name, ready="/ready"):
    """Until cp sees ``name`` as running (its /etc/hostname, which only the container's
    own mounts hold, has the container's name in it) and ``ready`` is there."""
    deadline = time.monotonic() + 30
    while not (hostname(crl, name) and crl("cp", name + ":" + ready, "-", check=False).returncode == 0):
        assert time.monotonic() < deadline, "the container never got ready"
        time.sleep(0.1)


def hostname(crl, name) -> str:
    proc = crl("cp", name + ":/etc/hostname", "-", check=False)
    if proc.returncode:
        return ""
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        return tar.extractfile("hostname").read().decode().strip()


def members(data: bytes) -> dict:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return {m.name: m for m in tar.getmembers()}


def tar_of(*entries) -> bytes:
    """A tar stream of (name, content or None for a directory, tarinfo attributes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content, attrs in entries:
            info = tarfile.TarInfo(name)
            for key, value in attrs.items():
                setattr(info, key, value)
            if content is None and "type" not in attrs:
                info.type = tarfile.DIRTYPE
                info.mode = attrs.get("mode", 0o755)
                tar.addfile(info)
            else:
                info.size = len(content or b"")
                tar.addfile(info, io.BytesIO(content or b""))
    return buf.getvalue()


def snapshot(path: str) -> dict:
    """name -> (inode, size, mtime) of everything directly in ``path``."""
    found = {}
    for entry in os.scandir(path):
        st = entry.stat(follow_symlinks=False)
        found[entry.name] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found


def start_attached(crl, name) -> str:
    return crl.out("start", "-a", name)


# -- out of a container ---------------------------------------------------------------------------

def test_cp_out_of_a_stopped_and_a_running_container(crl, driver, tmp_path):
    create(crl, driver, "out-c", "echo made > /made; mkdir -p /d/sub; echo deep > /d/sub/f; "
                                  "chown 1000:1000 /made; touch /ready; exec sleep 1000")
    # Created, never started: the image's files.
    crl("cp", "out-c:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:x:0:0:")
    assert os.stat(tmp_path / "passwd").st_uid == os.getuid()
    assert crl("cp", "out-c:/made", str(tmp_path), check=False).returncode == 125  # not made yet
    # Running: what its processes made, as they see it.
    crl("start", "out-c")
    wait_running(crl, "out-c")
    crl("cp", "out-c:/made", str(tmp_path / "made"))
    assert (tmp_path / "made").read_text() == "made\n"
    st = os.stat(tmp_path / "made")
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), "copied out: the user's own"
    crl("cp", "out-c:/d", str(tmp_path / "d-copy"))
    assert (tmp_path / "d-copy" / "sub" / "f").read_text() == "deep\n"
    # Stopped (exited): the same files, through a fresh mount.
    crl("stop", "-t", "0", "out-c")
    crl("cp", "out-c:/d/sub/f", str(tmp_path / "after-stop"))
    assert (tmp_path / "after-stop").read_text() == "deep\n"


def test_directory_rules(crl, tmp_path):
    run_detached(crl, "overlay", "rules", "mkdir -p /d/sub; echo a > /d/a; echo b > /d/sub/b; echo f > /file")
    dst = tmp_path / "dst"
    dst.mkdir()
    crl("cp", "rules:/d", str(tmp_path / "new"))           # dir -> new name: its contents
    assert sorted(os.listdir(tmp_path / "new")) == ["a", "sub"]
    crl("cp", "rules:/d", str(dst))                         # dir -> existing dir: inside it
    assert (dst / "d" / "sub" / "b").read_text() == "b\n"
    crl("cp", "rules:/d/.", str(dst))                       # dir/. -> its contents
    assert (dst / "a").read_text() == "a\n" and (dst / "sub" / "b").exists()
    crl("cp", "rules:/file", str(dst) + "/")                # file -> dir/
    assert (dst / "file").read_text() == "f\n"
    (tmp_path / "exists").write_text("old contents, longer than the new\n")
    crl("cp", "rules:/file", str(tmp_path / "exists"))      # file -> file: overwritten
    assert (tmp_path / "exists").read_text() == "f\n"
    for args, wording in (
            (("rules:/file", str(tmp_path / "nodir") + "/"), "does not exist"),
            (("rules:/file", str(tmp_path / "no" / "parent")), "parent directory"),
            (("rules:/d", str(tmp_path / "exists")), "cannot copy the directory"),
            (("rules:/nope", str(tmp_path)), "Could not find the file /nope in container rules"),
            (("nosuch:/etc", str(tmp_path)), "No such container: nosuch"),
            (("rules:/etc", "nosuch:/etc"), "copying between containers"),
            ((str(tmp_path), str(tmp_path)), "at least one container")):
        proc = crl("cp", *args, check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 125 and wording in err and err.count("\n") == 1, (args, err)
    assert not (tmp_path / "nodir").exists() and not (tmp_path / "no").exists()
    # The same rules going in (looked at from the host through cp out).
    src = tmp_path / "src"
    (src / "inner").mkdir(parents=True)
    (src / "inner" / "x").write_text("x\n")
    crl("cp", str(src), "rules:/d")                        # dir -> existing dir: inside it
    crl("cp", str(src) + "/.", "rules:/fresh")             # dir/. -> new name: created
    crl("cp", str(src / "inner" / "x"), "rules:/d/renamed")
    back = tmp_path / "back"
    back.mkdir()
    crl("cp", "rules:/d", str(back))
    assert (back / "d" / "src" / "inner" / "x").read_text() == "x\n"
    assert (back / "d" / "renamed").read_text() == "x\n"
    crl("cp", "rules:/fresh/inner/x", str(back / "fresh-x"))
    proc = crl("cp", str(src), "rules:/file", check=False)
    assert proc.returncode == 125 and b"cannot copy the directory" in proc.stderr
    proc = crl("cp", str(tmp_path / "missing"), "rules:/", check=False)
    assert proc.returncode == 125 and b"no such file or directory" in proc.stderr


def test_dash_both_ways(crl, tmp_path):
    run_detached(crl, "overlay", "dash", "mkdir -p /d/sub; echo deep > /d/sub/f; ln -s sub/f /d/link")
    data = crl("cp", "dash:/d", "-").stdout
    got = members(data)
    assert set(got) == {"d", "d/sub", "d/sub/f", "d/link"}
    assert got["d/link"].issym() and got["d/link"].linkname == "sub/f"
    assert got["d/sub/f"].uid == 0, "tar headers carry the container's ids"
    crl("cp", "-", "dash:/d", input=tar_of(("in", None, {}), ("in/g", b"given\n", {"mode": 0o640})))
    assert crl("cp", "dash:/d/in/g", "-").stdout.endswith(b"\0")  # a tar, not the bare file
    assert members(crl("cp", "dash:/d/in/g", "-").stdout)["g"].mode == 0o640
    for packed in (gzip.compress(tar_of(("gz", b"gz\n", {}))), lzma.compress(tar_of(("xz", b"xz\n", {})))):
        crl("cp", "-", "dash:/d", input=packed)
    assert {"d/gz", "d/xz"} <= set(members(crl("cp", "dash:/d", "-").stdout))
    proc = crl("cp", "-", "dash:/d/sub/f", input=tar_of(("x", b"x", {})), check=False)
    assert proc.returncode == 125 and b"must be a directory" in proc.stderr


# -- into a container -----------------------------------------------------------------------------

SHOW = "for f in /in/*; do stat -c '%n %u:%g %a' $f; cat $f; done"


def test_cp_in_to_a_stopped_and_a_running_container(crl, driver, mode, tmp_path):
    (tmp_path / "file").write_text("from the host\n")
    os.chmod(tmp_path / "file", 0o4755)
    create(crl, driver, "in-c", "mkdir -p /in; " + SHOW)
    proc = crl("cp", str(tmp_path / "file"), "in-c:/in/file", check=False)
    assert proc.returncode == 125 and b"parent directory /in does not exist in container in-c" in proc.stderr
    crl("cp", str(tmp_path / "file"), "in-c:/file")
    crl("cp", str(tmp_path / "file"), "in-c:/")           # as /file again, overwriting
    crl("cp", "in-c:/file", str(tmp_path / "back"))
    assert (tmp_path / "back").read_text() == "from the host\n"
    assert os.stat(tmp_path / "back").st_mode & 0o7777 == 0o755, "set-id bits are dropped without -a"
    # Running: the container sees the file at once, owned by its root.
    crl("run", "-d", "--name", "in-r", "--storage-driver", driver, "busybox", "sh", "-c",
        "mkdir /in; touch /ready; while [ ! -e /in/go ]; do sleep 0.05; done; " + SHOW)
    wait_running(crl, "in-r")
    crl("cp", str(tmp_path / "file"), "in-r:/in/plain")
    crl("cp", "-a", "-", "in-r:/in", input=tar_of(("kept", b"kept\n", {"uid": 1000, "gid": 1000, "mode": 0o4755})))
    crl("cp", str(tmp_path / "file"), "in-r:/in/go")
    assert crl.out("wait", "in-r").strip() == "0"
    shown = crl.out("logs", "in-r")
    assert "/in/plain 0:0 755\nfrom the host\n" in shown
    assert "/in/go 0:0 755\n" in shown
    if mode == "subuid":
        assert "/in/kept 1000:1000 4755\nkept\n" in shown, shown
    else:  # one id is mapped: the entry stays the container root's
        assert "/in/kept 0:0 " in shown, shown


def test_cp_a_maps_your_ids_to_root(crl, tmp_path):
    (tmp_path / "mine").write_text("mine\n")
    create(crl, "overlay", "ids", "stat -c '%u:%g' /mine")
    crl("cp", "-a", str(tmp_path / "mine"), "ids:/mine")
    assert start_attached(crl, "ids").strip() == "0:0"


# -- hostile containers and streams ---------------------------------------------------------------

HOSTILE = "ln -s /etc /data; mkdir -p /a/b/c; ln -s ../../../../etc /a/b/c/x; ln -s /etc/passwd /pw"


def test_symlinks_out_of_the_container_stay_in_it(crl, driver, tmp_path):
    host_etc = snapshot("/etc")
    (tmp_path / "payload").write_text("payload\n")
    for name, started in (("hostile-stopped", False), ("hostile-running", True)):
        if started:
            run_detached(crl, driver, name, HOSTILE)
        else:
            crl("run", "--name", name, "--storage-driver", driver, "busybox", "sh", "-c", HOSTILE)
        crl("cp", str(tmp_path / "payload"), name + ":/data/passwd-x")
        crl("cp", str(tmp_path / "payload"), name + ":/a/b/c/x/passwd-y")
        crl("cp", str(tmp_path / "payload"), name + ":/pw")   # the container's /etc/passwd
        for path in ("/etc/passwd-x", "/etc/passwd-y", "/etc/passwd"):
            got = members(crl("cp", name + ":" + path, "-").stdout)
            assert got[os.path.basename(path)].size == len("payload\n"), path
        # Out: the link itself without -L, the container's /etc with it; nothing else moves.
        out = tmp_path / ("out-" + name)
        out.mkdir()
        before = sorted(os.listdir(tmp_path))
        crl("cp", name + ":/data", str(out))
        assert os.readlink(out / "data") == "/etc"
        crl("cp", "-L", name + ":/data", str(out / "followed"))
        assert (out / "followed" / "passwd-x").read_text() == "payload\n"
        assert (out / "followed" / "passwd").read_text() == "payload\n"
        crl("cp", name + ":/a", str(out))
        assert os.readlink(out / "a" / "b" / "c" / "x") == "../../../../etc"
        assert sorted(os.listdir(tmp_path)) == before
    assert snapshot("/etc") == host_etc
    assert not os.path.exists("/etc/passwd-x") and not os.path.exists("/etc/passwd-y")


def test_climbing_tar_streams_are_refused(crl, tmp_path):
    run_detached(crl, "overlay", "climb", "mkdir -p /target/deep")
    cases = [
        tar_of(("../../escaped", b"no\n", {})),
        tar_of(("ok", None, {}), ("ok/../../escaped", b"no\n", {})),
        tar_of(("link", b"", {"type": tarfile.SYMTYPE, "linkname": "/"}), ("link/escaped", b"no\n", {})),
        tar_of(("hard", b"", {"type": tarfile.LNKTYPE, "linkname": "../../etc/passwd"})),
    ]
    for data in cases:
        proc = crl("cp", "-", "climb:/target/deep", input=data, check=False)
        assert proc.returncode == 125 and b"refusing the copy" in proc.stderr, proc.stderr
    # An absolute name is taken inside the destination.
    crl("cp", "-", "climb:/target/deep", input=tar_of(("/abs", b"contained\n", {})))
    assert members(crl("cp", "climb:/target/deep/abs", "-").stdout)["abs"].size == len("contained\n")
    for path in ("/escaped", "/target/escaped", "/link/escaped"):
        assert crl("cp", "climb:" + path, "-", check=False).returncode == 125
    assert not os.path.exists(tmp_path / "escaped")


# -- export ---------------------------------------------------------------------------------------

def test_export_lists_the_image_and_the_containers_files(crl, driver, mode, tmp_path):
    crl("run", "--name", "exp", "--storage-driver", driver, "busybox", "sh", "-c",
        "echo made > /made; rm /etc/group; mkdir -p /home/u; chown 1000:1000 /home/u")
    exported = tmp_path / "exp.tar"
    crl("export", "-o", str(exported), "exp")
    got = members(exported.read_bytes())
    assert {"bin/busybox", "etc/passwd", "made", "home/u", "proc", "dev", "sys"} <= set(got)
    assert "etc/group" not in got, "a file the container removed is not exported"
    assert not [n for n in got if n.startswith(("proc/", "sys/", "dev/"))]
    if mode == "subuid":
        assert (got["etc/owned-by-42"].uid, got["home/u"].uid) == (42, 1000)
    # What export writes, import takes.
    image = crl.out("import", str(exported), "exported:" + driver).strip()
    assert image.startswith("sha256:")
    assert crl.out("run", "--rm", "exported:" + driver, "cat", "/made") == "made\n"
    crl("rmi", "exported:" + driver)


def test_export_of_a_running_container_is_its_root_file_system(crl, driver):
    run_detached(crl, driver, "exp-run", "echo made > /made")
    data = crl("container", "export", "exp-run").stdout
    got = members(data)
    assert "made" in got and "ready" in got and "bin/sh" in got
    assert not [n for n in got if n.startswith(("proc/", "sys/", "dev/"))]
    # The runtime's /etc/hosts bind is not the container's file: at most its empty mount point.
    assert "etc/hosts" not in got or got["etc/hosts"].size == 0


def test_export_of_a_layered_image_honours_its_whiteouts(crl, driver):
    crl("create", "--name", "deb", "--storage-driver", driver, "debian", "true")
    got = members(crl("export", "deb").stdout)
    assert "etc/rootless-test/added" in got and "etc/debian_version" in got
    assert "etc/issue.net" not in got and "usr/share/doc/apt" not in got


def test_export_refuses_a_terminal_and_unknown_containers(crl):
    crl("create", "--name", "tty-exp", "busybox", "true")
    master, slave = pty.openpty()
    try:
        proc = crl("export", "tty-exp", stdout=slave, check=False)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 125
    assert b"cowardly refusing to save to a terminal. Use the -o flag or redirect" in proc.stderr
    proc = crl("export", "nosuch", check=False)
    assert proc.returncode == 125 and proc.stderr.decode().strip() == "rootless: error: No such container: nosuch"


def test_files_leave_no_process_behind(crl, driver, tmp_path):
    """The view, and a fuse-overlayfs it started (its command line names the storage
    root), end with each command."""
    create(crl, driver, "gone", "true")
    crl("cp", "gone:/etc/passwd", str(tmp_path / "p"))
    crl("cp", str(tmp_path / "p"), "gone:/p")
    crl("export", "-o", str(tmp_path / "t.tar"), "gone")
    assert my_processes(crl.root) == []


def test_a_running_container_is_copied_as_its_processes_see_it(crl, tmp_path):
    """Through its namespaces: the runtime's mounts (its /etc/hostname) are there, and a
    read-only root file system refuses what is copied in."""
    crl("create", "--name", "seen", "busybox", "sleep", "1000")
    assert hostname(crl, "seen") == "", "stopped: no runtime mounts"
    crl("start", "seen")
    cid = crl.out("ps", "-q", "--no-trunc", "--filter", "name=seen").strip()
    wait_running(crl, "seen", "/etc/passwd")
    assert hostname(crl, "seen") == cid[:12]
    run_detached(crl, "overlay", "ro", "true", "/etc/passwd", "--read-only")
    (tmp_path / "f").write_text("f\n")
    proc = crl("cp", str(tmp_path / "f"), "ro:/f", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and "Read-only file system" in err and err.count("\n") == 1, err


def test_keep_id_containers_still_get_root_owned_files(crl, mode, tmp_path):
    (tmp_path / "f").write_text("f\n")
    crl("create", "--name", "kid", "--userns", "keep-id", "busybox", "stat", "-c", "%u:%g", "/f")
    crl("cp", str(tmp_path / "f"), "kid:/f")
    shown = start_attached(crl, "kid").strip()
    if mode == "subuid":
        assert shown == "0:0"
    else:  # only your own id is mapped: the file is yours, at your number
        assert shown == "%d:%d" % (os.getuid(), os.getgid())


def test_export_of_a_never_started_container_has_the_images_owners(crl, mode):
    crl("create", "--name", "fresh-exp", "busybox", "true")
    got = members(crl("export", "fresh-exp").stdout)
    expected = (42, 42) if mode == "subuid" else (0, 0)  # single-uid squashes them at unpack
    assert (got["etc/owned-by-42"].uid, got["etc/owned-by-42"].gid) == expected
    assert (got["etc/passwd"].uid, got["bin/busybox"].uid) == (0, 0)


def test_large_trees_and_files_both_ways(crl, tmp_path):
    """Streams much bigger than a pipe's buffer, each way, arrive whole."""
    import hashlib
    crl("create", "--name", "big", "debian", "true")
    crl("cp", "big:/usr/lib", str(tmp_path / "lib"))
    listed = [n for n in members(crl("cp", "big:/usr/lib", "-").stdout)]
    copied = sum(len(dirs) + len(files) for _, dirs, files in os.walk(tmp_path / "lib")) + 1
    assert copied == len(listed) > 500
    blob = os.urandom(24 << 20)
    (tmp_path / "blob").write_bytes(blob)
    crl("cp", str(tmp_path / "blob"), "big:/blob")
    crl("cp", "big:/blob", str(tmp_path / "blob-back"))
    assert hashlib.sha256((tmp_path / "blob-back").read_bytes()).digest() == hashlib.sha256(blob).digest()
