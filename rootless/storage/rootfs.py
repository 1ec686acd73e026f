"""A container's root file system, one strategy per rung of the driver ladder.

Every driver has the same two steps:

* ``prepare(cdir, layers)`` on the host at ``create``: the directories the container
  keeps until ``rm`` (its writable layer), or, for ``copy``, the flattened tree itself;
* ``mount(cdir, layers)`` inside the container's user and mount namespaces at each start:
  returns the directory to pivot into. Nothing it mounts is visible on the host; the
  mounts go away with the namespace.
* ``view(cdir, layers)``, the same, read-only and safe while the container runs (``export``
  looks through it): the writable layer becomes the top lower layer, so no second mount
  ever uses the container's upper and work directories (overlayfs would reset the work
  directory under the running container's feet).

``layers`` are ``(diff_dir, record)`` pairs, lowest first. The runtime picks a driver
once (``create``) and records its name; nobody else branches on it.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List, Optional, Tuple
    Layers = List[Tuple[str, dict]]

from rootless.errors import RootlessError, Unsupported


class Overlay:
    """Kernel overlayfs mounted in the user namespace (``userxattr``, Linux >= 5.11)."""

    name = "overlay"
    # writable() is an upper dir with overlay whiteouts (else the whole rootfs, which
    # runtime.changes compares with the image's layers).
    upper = True

    def prepare(self, cdir: str, layers: Layers, foreign: bool = False) -> List[str]:
        """Nothing of the layers is read here: what a foreign store's owner alone may
        read stays so (the mount shows it as it is), so nothing is listed."""
        for d in ("upper", "work", "merged"):
            os.mkdir(os.path.join(cdir, d), 0o700)
        os.chmod(os.path.join(cdir, "upper"), 0o755)
        return []

    def writable(self, cdir: str) -> str:
        """The container's own changes (its writable layer): what ``ps -s`` measures."""
        return os.path.join(cdir, "upper")

    def graph_data(self, cdir: str, lower: List[str]) -> dict:
        """Docker's GraphDriver.Data of overlay2: the directories of the mount (``lower``:
        the image's layer directories, lowest first; overlay lists them topmost first)."""
        return {"LowerDir": ":".join(reversed(lower)), "MergedDir": os.path.join(cdir, "merged"),
                "UpperDir": os.path.join(cdir, "upper"), "WorkDir": os.path.join(cdir, "work")}

    def lower(self, layers: Layers) -> str:
        # Lower layers as paths relative to the layers directory (the caller chdirs there):
        # mount options are limited to one page, and absolute paths would fill it at ~30 layers.
        return ":".join(os.path.relpath(diff, os.path.dirname(os.path.dirname(diff))) for diff, _ in reversed(layers))

    def options(self, cdir: str, layers: Layers) -> str:
        return "lowerdir=%s,upperdir=%s,workdir=%s" % (self.lower(layers), os.path.join(cdir, "upper"),
                                                       os.path.join(cdir, "work"))

    def view_options(self, cdir: str, layers: Layers) -> str:
        lower = self.lower(layers)
        return "lowerdir=%s%s" % (os.path.join(cdir, "upper"), ":" + lower if lower else "")

    def mount(self, cdir: str, layers: Layers, volatile: bool = False) -> str:
        """``volatile`` (a ``--rm`` container, whose writable layer is thrown away): mount
        with overlayfs's ``volatile``. Without it the kernel syncs the whole file system of
        the upper directory when the mount goes, at the container's exit: every dirty page
        on it, the container's own bind-mounted work included (a build's output: a quarter
        of a second for 170 MB on a virtio disk), and a device flush even when nothing is
        dirty. The price is crash safety of the upper directory, which nobody keeps.
        overlayfs marks such a work directory (work/work/incompat/volatile) and refuses to
        mount it again; a ``--rm`` container mounts again only when it restarts or when
        ``cp`` writes into it before its start, so the mark is cleared first."""
        options = self.options(cdir, layers)
        if volatile:
            _clear_volatile_mark(os.path.join(cdir, "work"))
            options += ",volatile"
        return self._mount(cdir, layers, options, 0)

    def view(self, cdir: str, layers: Layers) -> str:
        from rootless.linux import mount
        return self._mount(cdir, layers, self.view_options(cdir, layers), mount.MS_RDONLY)

    def _mount(self, cdir: str, layers: Layers, options: str, flags: int) -> str:
        from rootless.linux import mount
        target = os.path.join(cdir, "merged")
        os.chdir(os.path.dirname(os.path.dirname(layers[-1][0])) if layers else cdir)
        try:
            mount.mount("overlay", target, "overlay", flags, options + ",userxattr")
        finally:
            os.chdir("/")
        return target

    def release(self) -> None:
        pass


def _clear_volatile_mark(work: str) -> None:
    """Remove overlayfs's mark of an earlier ``volatile`` mount from the work directory.
    Its directories have mode 0; the caller is root of the container's user namespace,
    which maps their owner, so it may read and remove them."""
    incompat = os.path.join(work, "work", "incompat")
    if os.path.lexists(incompat):  # only after a first mount: shutil is not on the run path
        import shutil
        shutil.rmtree(incompat)


class FuseOverlay(Overlay):
    """fuse-overlayfs, run in the foreground as a child of the keeper (which kills it when
    the container ends; its parent-death signal covers a crash)."""

    name = "fuse-overlayfs"

    def __init__(self, squash: bool = False):
        self.proc = None  # the fuse-overlayfs process (a subprocess.Popen)
        # Layers of another user's image store: their files are shown as root's (the
        # container's own), so copy-up and permission checks work as on our own layers.
        self.squash = ",squash_to_root" if squash else ""

    def mount(self, cdir: str, layers: Layers, volatile: bool = False) -> str:
        # A FUSE unmount does not sync the upper file system: nothing to skip.
        return self._serve(cdir, layers, self.options(cdir, layers) + self.squash)

    def view(self, cdir: str, layers: Layers) -> str:
        return self._serve(cdir, layers, self.view_options(cdir, layers) + self.squash)

    def _serve(self, cdir: str, layers: Layers, options: str) -> str:
        import subprocess
        from rootless.linux.idmap import which
        exe = which("fuse-overlayfs")
        if not exe:
            raise Unsupported("fuse-overlayfs is not installed; use --storage-driver overlay or copy")
        target = os.path.join(cdir, "merged")
        base = os.path.dirname(os.path.dirname(layers[-1][0])) if layers else cdir
        keeper = os.getpid()
        self.proc = subprocess.Popen([exe, "-f", "-o", options, target], cwd=base,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=lambda: _die_with_parent(keeper))
        before = os.stat(cdir).st_dev
        deadline = time.monotonic() + 10
        while os.stat(target).st_dev == before:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace").strip()
                raise RootlessError("fuse-overlayfs failed: %s" % (err.splitlines() or ["exit %d" % self.proc.returncode])[-1])
            if time.monotonic() > deadline:
                raise RootlessError("fuse-overlayfs did not mount %s within 10 s" % target)
            time.sleep(0.002)
        return target

    def release(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Copy:
    """One flattened copy of the image per container, made at create: works anywhere.

    It keeps no record of what the container changed: ``diff`` and ``commit``
    (``runtime.changes``) compare the rootfs, entry by entry, with what the image's layers
    show (type, permission bits, uid/gid, size, mtime, link target); content is not read."""

    name = "copy"
    upper = False

    def prepare(self, cdir: str, layers: Layers, foreign: bool = False) -> List[str]:
        """``foreign``: some layers are another user's: what only its owner may read is
        left empty, and listed in the result; of our own layers, that fails."""
        from rootless.storage.copy import flatten
        rootfs = os.path.join(cdir, "rootfs")
        os.mkdir(rootfs, 0o755)
        unreadable = []
        flatten(layers, rootfs, unreadable if foreign else None)
        return unreadable

    def mount(self, cdir: str, layers: Layers, volatile: bool = False) -> str:
        return os.path.join(cdir, "rootfs")

    def view(self, cdir: str, layers: Layers) -> str:
        """The tree itself (its readers only read)."""
        return os.path.join(cdir, "rootfs")

    def writable(self, cdir: str) -> str:
        """The whole flattened copy: every byte of it is the container's own."""
        return os.path.join(cdir, "rootfs")

    def graph_data(self, cdir: str, lower: List[str]) -> dict:
        """No layers below and no work directory: the copy is both the writable layer
        and the tree the container sees."""
        rootfs = os.path.join(cdir, "rootfs")
        return {"MergedDir": rootfs, "UpperDir": rootfs}

    def release(self) -> None:
        pass


DRIVERS = {"overlay": Overlay, "fuse-overlayfs": FuseOverlay, "copy": Copy}


def get(name: str, squash: bool = False):
    """The driver ``name``; ``squash``: fuse-overlayfs shows every file as root's."""
    try:
        return FuseOverlay(squash) if squash and name == FuseOverlay.name else DRIVERS[name]()
    except KeyError:
        raise Unsupported("unknown storage driver %r (choose overlay, fuse-overlayfs or copy)" % name)


def writable_size(name: str, cdir: str) -> int:
    """Bytes in the writable layer of a container of driver ``name`` (0 if unknown)."""
    from rootless.fsutil import apparent_size
    driver = DRIVERS.get(name)
    return apparent_size(driver().writable(cdir)) if driver else 0


def graph_data(name: str, cdir: str, lower: List[str]) -> Optional[dict]:
    """The directories a container of driver ``name`` has, by Docker's names (None if
    the driver is unknown)."""
    driver = DRIVERS.get(name)
    return driver().graph_data(cdir, lower) if driver else None


LADDER = ("overlay", "fuse-overlayfs", "copy")


def choose(forced: Optional[str], probed: str, layers: Layers,
           stores: Tuple[Tuple[str, dict], ...] = ()) -> Tuple[str, str]:
    """(driver, why): ``--storage-driver`` wins; overlays need the layers' whiteout marks.
    ``stores``: (root, probe answer) of each image store holding some of the layers: the
    lowest rung any of them allows is the highest the container can take."""
    name, why = forced or probed, "forced with --storage-driver" if forced else "probed"
    for root, answer in stores:
        if answer.get("choice") == "unusable":
            raise Unsupported("image store %s: %s" % (root, answer.get("reason", "")))
        rung = answer.get("choice", "copy")
        if not forced and LADDER.index(rung) > LADDER.index(name):
            name, why = rung, "image store %s: %s" % (root, answer.get("reason", ""))
    if name not in DRIVERS:
        raise Unsupported("unknown storage driver %r (choose overlay, fuse-overlayfs or copy)" % name)
    if name != "copy" and not all(rec.get("whiteout_marks", True) for _, rec in layers):
        if forced:
            raise Unsupported("the image's layers have no whiteout marks on this file system; "
                              "only --storage-driver copy can show it")
        return "copy", "the layers' file system cannot hold whiteout marks"
    return name, why


def _die_with_parent(keeper: int) -> None:
    """fuse-overlayfs's set-up: die with the keeper, and keep the keeper's capabilities.

    A keeper that died before the pdeathsig call would never signal: fuse-overlayfs would
    mount and serve for good, since it holds the keeper's mount namespace (and so its own
    mount) alive. Hence the check of the parent after the call.

    In single-uid mode with ``-u 1000`` the keeper is uid 1000 of its user namespace,
    not root, so execve would drop the capabilities fuse-overlayfs needs to mount;
    ambient capabilities carry them across."""
    from rootless.linux import caps, signals
    caps.set_pdeathsig(signals.SIGKILL)
    if os.getppid() != keeper:
        os._exit(1)
    if os.getuid() != 0:
        needed = ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_CHOWN", "CAP_FSETID"]
        caps.set_caps(needed, needed, needed)
        caps.raise_ambient(needed)
