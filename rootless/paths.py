"""Where rootless keeps things: the single owner of every path.

Storage root (images, layers, containers): ``--root`` / ``ROOTLESS_ROOT``, else
``$XDG_DATA_HOME/rootless`` (``~/.local/share/rootless``). Home directories on HPC systems
are often on NFS, Lustre or GPFS, where overlay mounts, xattrs and file locks misbehave;
when the default lands on such a file system we use ``/var/tmp/rootless-$UID`` instead and
say so once. An explicit root is always honoured.

Run state: ``$XDG_RUNTIME_DIR/rootless`` when that directory exists and is ours, else
``/tmp/rootless-run-$UID`` (mode 0700).

Image stores: other storage roots read, never written, for images and layers
(``--image-store DIR``, repeatable, or ``ROOTLESS_IMAGE_STORE=DIR[:DIR...]``): a cluster's
shared store on its parallel file system (see docs/image-stores.md).

Nothing here imports ctypes: the file-system type comes from /proc/self/mountinfo, so
``info`` and ``ps`` stay cheap.
"""

from __future__ import annotations

import os
import sys
from collections import namedtuple

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Optional

from rootless.errors import StoreError

NETWORK_FS = frozenset({
    "nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "ceph", "afs", "panfs",
    "beegfs", "9p", "fuse.glusterfs", "fuse.sshfs", "fuse.beegfs", "fuse.cvmfs",
})


class Paths(namedtuple("Paths", "root run root_reason image_stores", defaults=("", ()))):
    """Every location rootless reads or writes, derived from two directories (and the
    read-only image stores, a tuple of absolute storage roots).

    (A namedtuple rather than a frozen dataclass: importing dataclasses costs ~8 ms on
    every command, and ``images`` and ``ps`` are start-up bound.)
    """

    __slots__ = ()

    @property
    def blobs(self) -> str:
        return os.path.join(self.root, "blobs", "sha256")

    @property
    def layers(self) -> str:
        return os.path.join(self.root, "layers")

    @property
    def tmp(self) -> str:
        return os.path.join(self.root, "tmp")

    @property
    def locks(self) -> str:
        return os.path.join(self.root, "locks")

    @property
    def images_index(self) -> str:
        return os.path.join(self.root, "images.json")

    @property
    def containers(self) -> str:
        return os.path.join(self.root, "containers")

    @property
    def downloads(self) -> str:
        """Layer blobs being pulled; a partial one stays for the next pull to resume."""
        return os.path.join(self.root, "downloads")

    def blob(self, digest: str) -> str:
        return os.path.join(self.blobs, digest_hex(digest))

    def layer(self, diff_id: str) -> str:
        return os.path.join(self.layers, digest_hex(diff_id))


def digest_hex(digest: str) -> str:
    """``sha256:<hex>`` -> ``<hex>``; anything else is refused (it becomes a file name)."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise StoreError("not a sha256 digest: %r" % digest[:80])
    return hexpart


def fs_type(path: str) -> str:
    """The type of the file system holding ``path`` (which need not exist yet)."""
    path = os.path.realpath(path)
    best, best_type = "", "unknown"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                sep = fields.index("-")
                mnt = unescape_mountinfo(fields[4])
                if _contains(mnt, path) and len(mnt) >= len(best):
                    best, best_type = mnt, fields[sep + 1]
    except (OSError, ValueError, IndexError):
        pass
    return best_type


def unescape_mountinfo(field: str) -> str:
    """A path field of /proc/self/mountinfo as the path it names: the kernel writes space,
    tab, newline and backslash as octal escapes (``\\040``), so every backslash starts one.
    (No ``re``: its import would cost every command.)"""
    head, *escaped = field.split("\\")
    return head + "".join(chr(int(part[:3], 8)) + part[3:] for part in escaped)


def _contains(mount: str, path: str) -> bool:
    return mount == "/" or path == mount or path.startswith(mount.rstrip("/") + "/")


def default_root(env=None) -> "tuple[str, str]":
    """Pick the storage root and say why."""
    env = os.environ if env is None else env
    if env.get("ROOTLESS_ROOT"):
        return env["ROOTLESS_ROOT"], "from ROOTLESS_ROOT"
    home = env.get("HOME") or os.path.expanduser("~")
    data = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    preferred = os.path.join(data, "rootless")
    kind = fs_type(preferred)
    if kind in NETWORK_FS:
        local = "/var/tmp/rootless-%d" % os.getuid()
        return local, "%s is on %s, a network file system; using local %s" % (preferred, kind, local)
    return preferred, "default"


def default_run_dir(env=None) -> str:
    env = os.environ if env is None else env
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg:
        try:
            st = os.stat(xdg)
            if st.st_uid == os.getuid():
                return os.path.join(xdg, "rootless")
        except OSError:
            pass
    return "/tmp/rootless-run-%d" % os.getuid()


def resolve(root: Optional[str] = None, env=None, image_stores=None) -> Paths:
    """The Paths for this invocation; nothing is created here. ``image_stores``: the
    ``--image-store`` directories given (None: ``ROOTLESS_IMAGE_STORE``'s)."""
    if root:
        root, reason = root, "from --root"
    else:
        root, reason = default_root(env)
    root = os.path.abspath(root)
    return Paths(root=root, run=default_run_dir(env), root_reason=reason,
                 image_stores=image_store_list(root, env, image_stores))


def image_store_list(root: str, env=None, given=None) -> "tuple[str, ...]":
    """The read-only image stores, absolute, each once, in the order given, without the
    storage root itself (a store preparing a shared one with ``--root DIR`` while
    ``ROOTLESS_IMAGE_STORE`` names DIR writes it as its own)."""
    if given is None:
        env = os.environ if env is None else env
        given = [d for d in env.get("ROOTLESS_IMAGE_STORE", "").split(":") if d]
    result = []
    for d in given:
        d = os.path.abspath(d)
        if d != root and d not in result:
            result.append(d)
    return tuple(result)


def ensure_private_dir(path: str) -> None:
    """Create ``path`` (0700) if needed and check that it is ours and not a symlink."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError as e:
        raise StoreError("cannot create %s: %s; choose another with --root" % (path, e.strerror))
    if st.st_uid != os.getuid() or not os.path.isdir(path) or os.path.islink(path):
        raise StoreError("%s is not a directory owned by you (uid %d); choose another with --root"
                         % (path, os.getuid()))


def notice_once(paths: Paths) -> None:
    """Tell the user once per storage root that we moved it off a network file system."""
    if not paths.root_reason.startswith("from") and paths.root_reason != "default":
        marker = os.path.join(paths.root, ".location-notice")
        if not os.path.exists(marker):
            sys.stderr.write("rootless: notice: %s\n" % paths.root_reason)
            try:
                open(marker, "w").close()
            except OSError:
                pass
