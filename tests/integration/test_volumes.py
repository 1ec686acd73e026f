"""The user's data in containers: bind mounts, named and anonymous volumes, tmpfs, as the
unprivileged test user, in the id-mapping mode the probe chose (CI runs this as a user
with sub-ids and as one without), the file-system tests once per rootfs driver."""

import hashlib
import io
import json
import os
import re
import tarfile

import pytest

from conftest import loaded_root
from imagetools import sha, tar_bytes
from test_run import driver  # noqa: F401  (a pytest fixture)


@pytest.fixture(scope="module")
def vrl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "volumes")


@pytest.fixture(scope="module")
def mode(vrl):
    found = re.search(r"Id mapping: (\S+)", vrl.out("info"))
    assert found
    return found.group(1)


@pytest.fixture(autouse=True)
def nothing_left(request):
    """Each test leaves no container and no volume (so that the next one's counts hold)."""
    yield
    if "vrl" not in request.fixturenames:
        return
    vrl = request.getfixturevalue("vrl")
    for cid in vrl.out("ps", "-a", "-q").split():
        vrl("rm", "-f", "-v", cid, check=False)
    for name in vrl.out("volume", "ls", "-q").split():
        vrl("volume", "rm", "-f", name, check=False)


def subuid_start() -> int:
    import pwd
    name = pwd.getpwuid(os.getuid()).pw_name
    with open("/etc/subuid") as f:
        for line in f:
            parts = line.strip().split(":")
            if parts[0] in (name, str(os.getuid())):
                return int(parts[1])
    raise AssertionError("no /etc/subuid range")


def host_dir(tmp_path, name="w"):
    d = tmp_path / name
    d.mkdir()
    d.chmod(0o755)
    (d / "host.txt").write_text("from the host\n")
    return d


def run(vrl, *args, **kw):
    return vrl("run", "--rm", *args, **kw)


# -- bind mounts -----------------------------------------------------------------------------

def test_bind_mount_reads_writes_and_owners(vrl, driver, mode, tmp_path):
    d = host_dir(tmp_path)
    out = run(vrl, "--storage-driver", driver, "-v", "%s:/w" % d, "busybox", "sh", "-c",
              "cat /w/host.txt; stat -c %u /w/host.txt; echo made > /w/new; mkdir /w/dir").stdout.decode()
    # The host user's files are container root's; what container root writes is the user's.
    assert out == "from the host\n0\n"
    assert (d / "new").read_text() == "made\n"
    assert (d / "new").stat().st_uid == os.getuid() and (d / "dir").stat().st_uid == os.getuid()
    # keep-id: the user's own number inside, the user's files on the host, in both modes.
    out = run(vrl, "--userns=keep-id", "-v", "%s:/w" % d, "busybox", "sh", "-c",
              "id -u; stat -c %u /w/host.txt; echo k > /w/kept").stdout.decode().split()
    assert out == [str(os.getuid()), str(os.getuid())]
    assert (d / "kept").stat().st_uid == os.getuid()
    # Another user of the container: a sub-id on the host with sub-ids; without, every
    # user of the container is the host user (one id is all there is).
    (d / "open").mkdir(mode=0o777)
    (d / "open").chmod(0o777)
    run(vrl, "-u", "1000", "-v", "%s:/w" % d, "busybox", "sh", "-c", "echo u > /w/open/by-1000")
    owner = (d / "open" / "by-1000").stat().st_uid
    assert owner == (subuid_start() + 999 if mode == "subuid" else os.getuid())


def test_read_only_binds_hold_for_submounts_too(vrl, tmp_path):
    d = host_dir(tmp_path)
    proc = run(vrl, "-v", "%s:/w:ro" % d, "busybox", "touch", "/w/x", check=False)
    assert proc.returncode == 1 and b"Read-only file system" in proc.stderr
    proc = run(vrl, "--mount", "type=bind,src=%s,dst=/m,readonly" % d, "busybox", "touch", "/m/x", check=False)
    assert proc.returncode == 1 and b"Read-only file system" in proc.stderr
    assert sorted(os.listdir(d)) == ["host.txt"]
    # The host's /dev has submounts (/dev/shm, a tmpfs everyone may write): bound read-only,
    # they are read-only too.
    probe = "rootless-ro-probe-%d" % os.getpid()
    proc = run(vrl, "-v", "/dev:/hostdev:ro", "busybox", "sh", "-c",
               "grep -q ' /hostdev/shm ' /proc/mounts && touch /hostdev/shm/" + probe, check=False)
    assert proc.returncode == 1 and b"Read-only file system" in proc.stderr, proc.stderr
    assert not os.path.exists("/dev/shm/" + probe)
    # --read-only: the root is read-only, the mounts asked for stay writable.
    out = run(vrl, "--read-only", "-v", "%s:/w" % d, "--tmpfs", "/scratch", "busybox", "sh", "-c",
              "touch /etc/x 2>&1; echo w > /w/ok && echo s > /scratch/ok && echo both").stdout.decode()
    assert "Read-only file system" in out and out.endswith("both\n")


def test_a_symlink_in_the_image_cannot_take_a_mount_out_of_it(vrl, test_images, tmp_path):
    """An image whose /data is a symlink to /etc gets the mount on its own /etc; one whose
    /esc climbs out with ../ gets it inside its root; the host's paths are untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    outside.chmod(0o755)
    climb = "../" * 12 + str(outside).lstrip("/")
    image = symlink_image(vrl, test_images, tmp_path, {"data": "/etc", "esc": climb})
    d = host_dir(tmp_path)
    out = run(vrl, "-v", "%s:/data" % d, "-v", "%s:/esc" % d, image, "sh", "-c",
              "cat /etc/host.txt; cat %s/host.txt; echo in > /esc/written" % outside).stdout.decode()
    assert out == "from the host\nfrom the host\n"
    assert os.listdir(outside) == []  # the host's directory: nothing mounted on it, nothing written
    assert (d / "written").read_text() == "in\n"


def symlink_image(vrl, test_images, tmp_path, links) -> str:
    """busybox with one more layer holding the symlinks ``links`` (name: target)."""
    with tarfile.open(os.path.join(test_images, "busybox-docker.tar")) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        config = json.load(tar.extractfile(manifest["Config"]))
        layers = [tar.extractfile(name).read() for name in manifest["Layers"]]
    extra = tar_bytes([{"name": name, "type": "symlink", "target": target} for name, target in links.items()])
    layers.append(extra)
    config["rootfs"]["diff_ids"].append(sha(extra))
    config.setdefault("history", []).append({"created": "2024-01-01T00:00:00Z", "created_by": "symlinks"})
    blob = json.dumps(config).encode()
    names = ["%s/layer.tar" % hashlib.sha256(l).hexdigest() for l in layers]
    entries = [(hashlib.sha256(blob).hexdigest() + ".json", blob)] + list(zip(names, layers))
    entries.append(("manifest.json", json.dumps([{"Config": entries[0][0], "RepoTags": ["links:1"],
                                                  "Layers": names}]).encode()))
    path = tmp_path / "links.tar"
    with tarfile.open(str(path), "w") as out:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    vrl("load", "-i", str(path))
    return "links:1"


# -- tmpfs -----------------------------------------------------------------------------------

def test_tmpfs_size_limit_is_enforced(vrl):
    for flags in (["--tmpfs", "/t:size=1m"], ["--mount", "type=tmpfs,dst=/t,tmpfs-size=1048576"]):
        proc = run(vrl, *flags, "busybox", "sh", "-c",
                   "dd if=/dev/zero of=/t/fill bs=64k count=32 2>&1; ls -l /t/fill", check=False)
        out = proc.stdout.decode()
        assert "No space left on device" in out, (flags, out)
        assert int(out.split()[-5]) <= 1 << 20, out  # the file stopped at the limit


# -- named and anonymous volumes --------------------------------------------------------------

def test_a_named_volume_persists_until_volume_rm(vrl, driver):
    run(vrl, "--storage-driver", driver, "-v", "keep:/d", "busybox", "sh", "-c", "echo first > /d/f")
    assert run(vrl, "-v", "keep:/d", "busybox", "cat", "/d/f").stdout == b"first\n"
    cid = vrl.out("create", "-v", "keep:/d", "busybox", "true").strip()
    proc = vrl("volume", "rm", "keep", check=False)
    assert proc.returncode != 0 and b"volume is in use" in proc.stderr and cid.encode() in proc.stderr
    vrl("rm", cid)
    mountpoint = json.loads(vrl.out("volume", "inspect", "keep"))[0]["Mountpoint"]
    assert os.path.isfile(os.path.join(mountpoint, "f"))
    assert vrl.out("volume", "rm", "keep") == "keep\n"
    assert not os.path.exists(os.path.dirname(mountpoint))
    assert vrl.out("volume", "ls", "-q") == ""


def test_an_empty_volume_is_filled_from_the_image_on_first_use(vrl, driver, mode):
    out = run(vrl, "--storage-driver", driver, "-v", "etc:/etc", "busybox", "sh", "-c",
              "cat /etc/passwd | head -1; stat -c %u /etc/owned-by-42").stdout.decode().split("\n")
    assert out[0].startswith("root:")
    assert out[1] == ("42" if mode == "subuid" else "0")  # owners where the mapping has them
    data = json.loads(vrl.out("volume", "inspect", "etc"))[0]["Mountpoint"]
    assert os.path.isfile(os.path.join(data, "passwd"))
    # Used once, it is not filled again: what the container left stays.
    run(vrl, "-v", "etc:/etc", "busybox", "rm", "/etc/passwd")
    assert run(vrl, "-v", "etc:/etc", "busybox", "ls", "/etc/passwd", check=False).returncode == 1
    # nocopy: an empty volume stays empty (but for the mount points of /etc's own files).
    listed = run(vrl, "-v", "bare:/etc:nocopy", "busybox", "ls", "/etc").stdout.decode().split()
    assert "passwd" not in listed and "group" not in listed


def test_anonymous_volumes_go_with_rm_v_and_with_rm(vrl, test_images, tmp_path):
    cid = vrl.out("create", "-v", "/scratch", "busybox", "sh", "-c", "echo x > /scratch/f").strip()
    vrl("start", "-a", cid)
    [name] = vrl.out("volume", "ls", "-q").split()
    assert len(name) == 64
    mounts = json.loads(vrl.out("inspect", cid))[0]["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [("volume", name, "/scratch")]
    vrl("rm", "-v", cid)
    assert vrl.out("volume", "ls", "-q") == ""
    run(vrl, "-v", "/scratch", "busybox", "true")
    assert vrl.out("volume", "ls", "-q") == ""
    # An image's VOLUME is an anonymous volume, filled from the image.
    from test_run import busybox_with
    vrl("load", "-i", busybox_with(test_images, str(tmp_path / "vol.tar"), "withvol:1", Volumes={"/etc": {}}))
    assert run(vrl, "withvol:1", "head", "-1", "/etc/passwd").stdout.startswith(b"root:")
    assert vrl.out("volume", "ls", "-q") == ""  # --rm took it
    cid = vrl.out("create", "withvol:1", "true").strip()
    assert len(vrl.out("volume", "ls", "-q").split()) == 1
    vrl("rm", cid)  # without -v the volume stays, as Docker leaves it
    assert len(vrl.out("volume", "ls", "-q").split()) == 1
    assert "Total reclaimed space" in vrl.out("volume", "prune", "-f")
    assert vrl.out("volume", "ls", "-q") == ""


def test_volumes_from(vrl, tmp_path):
    d = host_dir(tmp_path)
    src = vrl.out("create", "-v", "%s:/b" % d, "-v", "shared:/n", "busybox", "true").strip()
    run(vrl, "--volumes-from", src, "busybox", "sh", "-c", "echo via > /n/f; cat /b/host.txt")
    proc = run(vrl, "--volumes-from", src + ":ro", "busybox", "sh", "-c", "cat /n/f; touch /b/x", check=False)
    assert proc.stdout == b"via\n" and b"Read-only file system" in proc.stderr
    assert json.loads(vrl.out("inspect", src))[0]["HostConfig"]["Binds"] == ["%s:/b" % d, "shared:/n"]
    vrl("rm", src)


def test_volume_commands(vrl):
    assert vrl.out("volume", "create", "--label", "team=a", "v1") == "v1\n"
    assert vrl.out("volume", "create", "v1") == "v1\n"  # Docker: an existing name is returned
    vrl("volume", "create", "v2")
    assert vrl.out("volume", "ls", "-q") == "v1\nv2\n"
    assert vrl.out("volume", "ls", "-q", "-f", "label=team=a") == "v1\n"
    assert vrl.out("volume", "ls", "--format", "{{.Name}} {{.Driver}}") == "v1 local\nv2 local\n"
    assert vrl.out("volume", "inspect", "-f", "{{.Name}} {{.Labels.team}} {{.Scope}}", "v1") == "v1 a local\n"
    proc = vrl("volume", "inspect", "nope", check=False)
    assert proc.returncode == 1 and proc.stderr == b"Error: No such volume: nope\n"
    cid = vrl.out("create", "-v", "v2:/x", "busybox", "true").strip()
    out = vrl.out("volume", "prune", "-f")  # named ones stay without -a
    assert vrl.out("volume", "ls", "-q") == "v1\nv2\n", out
    vrl("volume", "prune", "-a", "-f")  # v2 is in use: it stays
    assert vrl.out("volume", "ls", "-q") == "v2\n"
    vrl("rm", cid)
    assert vrl("volume", "rm", "nope", check=False).returncode != 0
    assert vrl("volume", "rm", "-f", "nope").returncode == 0


def test_devices_the_user_can_open(vrl):
    assert os.access("/dev/fuse", os.R_OK | os.W_OK), "CI opens /dev/fuse to all users (setup-test-users)"
    out = run(vrl, "--device", "/dev/fuse", "--device", "/dev/fuse:/dev/other:rw", "busybox", "sh", "-c",
              "test -c /dev/fuse && exec 3<>/dev/fuse && ls -l /dev/other | cut -c1").stdout
    assert out == b"c\n"
    assert run(vrl, "busybox", "test", "-e", "/dev/fuse", check=False).returncode == 1  # not without
    cid = vrl.out("create", "--device", "/dev/fuse", "busybox", "true").strip()
    assert json.loads(vrl.out("inspect", cid))[0]["HostConfig"]["Devices"] == [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}]
    vrl("rm", cid)
    # A device the user may not open: refused at create, with the reason.
    closed = next((p for p in ("/dev/kvm", "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/mem")
                   if os.path.exists(p) and not os.access(p, os.R_OK | os.W_OK)), None)
    assert closed, "no root-only device node on this host"
    proc = run(vrl, "--device", closed, "busybox", "true", check=False)
    assert proc.returncode == 125 and b"you cannot open it for reading and writing" in proc.stderr
    assert proc.stderr.count(b"\n") == 1 and vrl.out("ps", "-a", "-q") == ""


@pytest.mark.parametrize("flags, message", [
    (["--device", "/dev/no-such-device"], 'adding custom device "/dev/no-such-device": no such file'),
    (["--device", "/dev/fuse:r"], "permissions 'r' need a device cgroup"),
    (["--device", "/etc/passwd"], "not a device node"),
    (["-v", "/no/such/dir:/x"], "bind source path does not exist: /no/such/dir"),
    (["-v", "/tmp:relative"], "mount path must be absolute"),
    (["-v", "/tmp:/"], "destination can't be '/'"),
    (["-v", "a/b:/x"], "includes invalid characters for a local volume name"),
    (["-v", "/tmp:/x:bogus"], "invalid mode: bogus"),
    (["-v", "/tmp:/x", "-v", "/etc:/x"], "Duplicate mount point: /x"),
    (["--mount", "type=bind,src=/tmp"], "target is required"),
    (["--mount", "type=nfs,dst=/x"], "mount type 'nfs' is not supported"),
    (["--mount", "type=bind,dst=/x,flavour=1"], "unexpected key 'flavour'"),
    (["--tmpfs", "/t:size=lots"], "invalid tmpfs size"),
    (["--volumes-from", "no-such-container"], "No such container"),
])
def test_bad_mounts_are_one_line_125_and_leave_nothing(vrl, flags, message):
    proc = vrl("run", "--rm", *flags, "busybox", "true", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and err.count("\n") == 1 and message in err, err
    assert vrl.out("ps", "-a", "-q") == "" and vrl.out("volume", "ls", "-q") == ""


def test_inspect_shows_the_mounts(vrl, tmp_path):
    d = host_dir(tmp_path)
    cid = vrl.out("create", "-v", "%s:/b:ro" % d, "--tmpfs", "/t:size=1m", "busybox", "true").strip()
    info = json.loads(vrl.out("inspect", cid))[0]
    assert info["Mounts"] == [{"Type": "bind", "Source": str(d), "Destination": "/b", "Mode": "ro", "RW": False,
                               "Propagation": "rprivate"}]
    assert info["HostConfig"]["Binds"] == ["%s:/b:ro" % d]
    assert info["HostConfig"]["Tmpfs"] == {"/t": "size=1m"}
    vrl("rm", cid)
