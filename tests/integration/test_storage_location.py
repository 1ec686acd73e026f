"""The storage root moves off a network file system, as far as this kernel lets a test
show it.

The kernel here has no NFS, Lustre or GPFS, but FUSE file systems may be mounted in a
user namespace, and the kernel takes their subtype from the type name: ``mount -t
fuse.sshfs`` gives a mount that ``/proc/self/mountinfo`` lists as ``fuse.sshfs``, which
rootless counts as a network file system. The test mounts one over the user's
``~/.local/share`` (no daemon behind it: the connection is dropped, so any access fails
with ENOTCONN, as with a dead sshfs) and runs rootless in that namespace. NFS itself is
left to a VM with an NFS-capable kernel.

It uses ``/var/tmp/rootless-$UID``, the real local fallback: it refuses to run when that
already holds something, and removes it afterwards.
"""

import os
import shlex
import shutil
import subprocess

import pytest

from conftest import have, need, rootless_command


@pytest.fixture
def local_root(unprivileged):
    path = "/var/tmp/rootless-%d" % os.getuid()
    need(not os.path.exists(path) or not os.listdir(path),
         "%s must be empty or absent (this test uses it and removes it)" % path)
    yield path
    if os.path.isdir(path):
        subprocess.run(rootless_command() + ["--root", path, "system", "reset", "--force"], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def in_sshfs_home(home, script):
    """Run ``script`` (sh) where ``home/.local/share`` is a dead fuse.sshfs mount."""
    need(have("unshare") and os.access("/dev/fuse", os.R_OK | os.W_OK), "unshare and a usable /dev/fuse")
    share = os.path.join(home, ".local", "share")
    os.makedirs(share)
    uid, gid = os.getuid(), os.getgid()
    setup = ("exec 3<>/dev/fuse && mount -i -t fuse.sshfs -o fd=3,rootmode=40000,user_id=%d,group_id=%d "
             "me@fileserver:/home %s && exec 3>&- && " % (uid, gid, shlex.quote(share)))
    env = {k: v for k, v in os.environ.items() if k not in ("ROOTLESS_ROOT", "XDG_DATA_HOME")}
    env.update(HOME=home, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run(["unshare", "--user", "--map-user=%d" % uid, "--map-group=%d" % gid, "--mount",
                           "--keep-caps", "sh", "-c", setup + script], capture_output=True, env=env, timeout=300)


def test_default_root_on_a_network_fs_moves_to_local_disk(tmp_path, test_images, local_root):
    rl = " ".join(shlex.quote(a) for a in rootless_command())
    busybox = shlex.quote(os.path.join(test_images, "busybox-docker.tar"))
    script = ("awk '{{for (i = 7; i < NF; i++) if ($i == \"-\") print $5, $(i + 1)}}' /proc/self/mountinfo "
              "| grep ' fuse.sshfs$'; echo ---; "
              "{rl} load -i {tar} 2>&1; echo ---; {rl} images --format '{{{{.Repository}}}}' 2>&1; echo ---; "
              "{rl} info 2>&1; echo ---; {rl} --root {alt} info 2>&1; echo ---; "
              "ROOTLESS_ROOT={alt} {rl} info 2>&1").format(rl=rl, tar=busybox, alt=shlex.quote(str(tmp_path / "alt")))
    proc = in_sshfs_home(str(tmp_path / "home"), script)
    assert proc.returncode == 0, proc.stderr.decode()
    mount, load, images, info, explicit, from_env = proc.stdout.decode().split("---\n")
    share = str(tmp_path / "home/.local/share")
    assert mount.split("\n")[0] == share + " fuse.sshfs"
    notice = ("rootless: notice: %s/rootless is on fuse.sshfs, a network file system; using local %s"
              % (share, local_root))
    # Said once, by the command that created the store there; the image went there.
    assert load.split("\n")[:2] == [notice, "Loaded image: busybox:latest"], load
    assert images == "busybox\n"
    assert "Storage root: %s\n" % local_root in info and "network file system" in info and notice not in info
    assert os.listdir(os.path.join(local_root, "layers"))
    # An explicit root is honoured as given, from --root and from ROOTLESS_ROOT.
    for shown, why in ((explicit, "from --root"), (from_env, "from ROOTLESS_ROOT")):
        assert "Storage root: %s\n" % (tmp_path / "alt") in shown and "Chosen: %s\n" % why in shown, shown
        assert "notice" not in shown
