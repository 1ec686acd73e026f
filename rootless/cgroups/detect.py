"""Which cgroup v2 tree this user may use for a container's limits, found by looking only.

The look reads the mount table, ``/proc/self/cgroup`` and the controller files, and asks
``access(2)``: nothing is written and nothing is started, so ``info`` and every ``run``
with a limit may ask. (On a host whose cgroups are managed by someone else, writing under
/sys/fs/cgroup to find out would be wrong.)

The answer is a strategy, as for the rootfs driver:

==========  ============================================================================
cgroupfs    our own cgroup is delegated to us (its directory, ``cgroup.procs`` and
            ``cgroup.subtree_control`` writable by us): a container's cgroup is made
            under it
systemd     our cgroup is not ours, but the systemd user manager runs (its private
            socket under the runtime directory), with a user bus and ``busctl``: a
            delegated scope is asked of it for each container (``busctl --user call
            ... StartTransientUnit``: no D-Bus library); it gets the controllers that
            ``user@UID.service`` has
none        neither: ``problem`` says why, ``remedy`` what would fix it
==========  ============================================================================

``hierarchy`` is ``unified`` (/sys/fs/cgroup is cgroup2), ``hybrid`` (cgroup2 beside the
v1 hierarchies, which hold the controllers), ``legacy`` (v1 only) or ``none``.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional

# Which controller each limit needs (the names the issue of a flag is reported with).
CONTROLLERS = ("cpu", "cpuset", "io", "memory", "pids")
DELEGATE_DROP_IN = "/etc/systemd/system/user@.service.d/delegate.conf"


class Cgroups:
    """What ``detect`` found. ``controllers``: those a container's cgroup can have."""

    def __init__(self, hierarchy: str, mount: str = "", path: str = "", strategy: str = "none",
                 controllers: "Optional[List[str]]" = None, problem: str = "", remedy: str = "",
                 parent: str = ""):
        self.hierarchy, self.mount, self.path = hierarchy, mount, path
        self.strategy, self.problem, self.remedy = strategy, problem, remedy
        self.controllers = list(controllers or [])
        # The directory the strategy makes cgroups under (cgroupfs: our own cgroup; systemd:
        # the user manager's, where its scopes go).
        self.parent = parent

    @property
    def version(self) -> str:
        """Docker's CgroupVersion: "2" only for the unified hierarchy."""
        return "2" if self.hierarchy == "unified" else "1"

    def as_dict(self) -> "Dict[str, object]":
        return {"Hierarchy": self.hierarchy, "Version": self.version, "Mount": self.mount,
                "Path": self.path, "Strategy": self.strategy, "Parent": self.parent,
                "Controllers": list(self.controllers), "Problem": self.problem, "Remedy": self.remedy}


def hierarchy(mounts_text: str) -> "tuple[str, str]":
    """(hierarchy, cgroup2 mount point) from /proc/self/mounts' text."""
    v2, v1 = "", False
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        if fields[2] == "cgroup2" and (not v2 or fields[1] == "/sys/fs/cgroup"):
            v2 = fields[1]
        elif fields[2] == "cgroup":
            v1 = True
    if v2 == "/sys/fs/cgroup":
        return "unified", v2
    if v2:
        return ("hybrid" if v1 else "unified"), v2
    return ("legacy" if v1 else "none"), ""


def own_path(cgroup_text: str) -> str:
    """Our path in the unified hierarchy (the ``0::PATH`` line of /proc/self/cgroup)."""
    for line in cgroup_text.splitlines():
        if line.startswith("0::"):
            return line[3:] or "/"
    return ""


def user_manager_path(uid: int) -> str:
    """Where systemd puts the user manager of ``uid`` in the hierarchy."""
    return "/user.slice/user-%d.slice/user@%d.service" % (uid, uid)


def runtime_dir(uid: int, environ: "Optional[Dict[str, str]]" = None) -> str:
    """The user's runtime directory: $XDG_RUNTIME_DIR, else systemd's /run/user/UID."""
    env = os.environ if environ is None else environ
    return env.get("XDG_RUNTIME_DIR") or "/run/user/%d" % uid


def decide(hier: str, mount: str, path: str, own: "Optional[List[str]]", own_writable: bool,
           manager: "Optional[List[str]]", uid: int, user: str) -> Cgroups:
    """The strategy from what was seen. Pure: ``own`` are the controllers of our own cgroup
    (None: unreadable), ``manager`` those of the running user manager's cgroup (None: no
    user manager we can use)."""
    if hier == "legacy":
        return Cgroups(hier, problem="this host has cgroup v1 only",
                       remedy="limits need cgroup v2: ask root to boot with systemd.unified_cgroup_hierarchy=1")
    if hier == "none":
        return Cgroups(hier, problem="no cgroup file system is mounted",
                       remedy="ask root to mount cgroup2 on /sys/fs/cgroup")
    if hier == "hybrid" and not set(own or ()) & set(CONTROLLERS) and not manager:
        return Cgroups(hier, mount, path, problem="this host's cgroup controllers are on cgroup v1 "
                       "(a hybrid hierarchy: cgroup v2 at %s has none of %s)" % (mount, " ".join(CONTROLLERS)),
                       remedy="limits need them on cgroup v2: ask root to boot with systemd.unified_cgroup_hierarchy=1")
    directory = mount + ("" if path == "/" else path)
    if own_writable:
        return Cgroups(hier, mount, path, "cgroupfs", own or [], parent=directory)
    if manager is not None:
        return Cgroups(hier, mount, path, "systemd", manager, parent=mount + user_manager_path(uid))
    return Cgroups(hier, mount, path, problem="your cgroup %s is not delegated to you and no systemd user "
                   "manager runs for uid %d" % (path, uid),
                   remedy="ask root to run 'loginctl enable-linger %s' (your user manager then starts and "
                   "is given a cgroup subtree)" % user)


def refusal(found: Cgroups, needed: "Dict[str, List[str]]") -> str:
    """Why the limits asked for cannot be applied, as one line ("" when they can):
    ``needed`` maps each controller asked for to the flags that asked for it."""
    missing = [c for c in needed if c not in found.controllers]
    if not missing:
        return ""
    flags = " and ".join(f for c in missing for f in needed[c])
    what = "the cgroup v2 %s controller%s delegated to you" % (" and ".join(missing), "s" if len(missing) > 1 else "")
    if found.strategy == "none":
        return "%s need%s %s: %s; %s" % (flags, "" if " and " in flags else "s", what, found.problem, found.remedy)
    if found.hierarchy == "hybrid":
        why = "on this host %s on cgroup v1 (a hybrid hierarchy)" % (
            "it is" if len(missing) == 1 else "they are")
        remedy = "ask root to boot with systemd.unified_cgroup_hierarchy=1"
    else:
        why = "%s has only %s" % (found.parent, " ".join(found.controllers) or "no controllers")
        if found.strategy == "systemd" or "/user@" in found.parent:
            remedy = ("ask root for %s with '[Service]' and 'Delegate=cpu cpuset io memory pids', then "
                      "'systemctl daemon-reload' and a new login" % DELEGATE_DROP_IN)
        else:
            remedy = "ask whoever delegated %s to you to enable %s in its parent's cgroup.subtree_control" % (
                found.parent, " ".join(missing))
    return "%s need%s %s: %s; %s" % (flags, "" if " and " in flags else "s", what, why, remedy)


def detect(environ: "Optional[Dict[str, str]]" = None) -> Cgroups:
    """Look at this host (read-only) and decide."""
    import pwd
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    hier, mount = hierarchy(read_text("/proc/self/mounts"))
    if not mount:
        return decide(hier, mount, "", None, False, None, uid, user)
    path = own_path(read_text("/proc/self/cgroup")) or "/"
    directory = mount + ("" if path == "/" else path)
    own = _controllers(directory)
    writable = all(os.access(os.path.join(directory, name), os.W_OK)
                   for name in ("", "cgroup.procs", "cgroup.subtree_control"))
    manager = None
    if not writable and _user_manager_runs(uid, environ):
        manager = _controllers(mount + user_manager_path(uid))
    return decide(hier, mount, path, own, writable, manager, uid, user)


def user_bus_env(uid: int, environ: "Optional[Dict[str, str]]" = None) -> "Dict[str, str]":
    """Our environment, with what ``busctl --user`` needs to find the user bus (a shell
    without a systemd session has neither variable)."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("XDG_RUNTIME_DIR", runtime_dir(uid, environ))
    env.setdefault("DBUS_SESSION_BUS_ADDRESS", "unix:path=" + os.path.join(env["XDG_RUNTIME_DIR"], "bus"))
    return env


def _user_manager_runs(uid: int, environ) -> bool:
    """The user manager runs (its private socket) and can be asked for a scope: the user
    bus's socket exists and busctl is installed (cgroups.v2 asks with it)."""
    from rootless.linux.idmap import which
    base = runtime_dir(uid, environ)
    for name in (os.path.join("systemd", "private"), "bus"):
        try:
            if not stat.S_ISSOCK(os.stat(os.path.join(base, name)).st_mode):
                return False
        except OSError:
            return False
    return bool(which("busctl"))


def _controllers(directory: str) -> "Optional[List[str]]":
    text = read_text(os.path.join(directory, "cgroup.controllers"), None)
    return None if text is None else text.split()


def read_text(path: str, default: "Optional[str]" = "") -> "Optional[str]":
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default
