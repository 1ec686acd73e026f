"""The user-namespace ladder: full subuid mapping -> single uid -> a clear error.

Probed once per host set-up (the answer is cached in the run dir by ``rootless.probes``).
"""

import os
import pwd
from typing import Dict

from rootless.linux import idmap

SYSCTLS = (
    ("/proc/sys/kernel/unprivileged_userns_clone", "0",
     "sysctl kernel.unprivileged_userns_clone=1 (Debian/Ubuntu kernels)"),
    ("/proc/sys/user/max_user_namespaces", "0", "sysctl user.max_user_namespaces=15000"),
    ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1",
     "sysctl kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04+ AppArmor)"),
)


def _try_userns() -> str:
    uid = os.getuid()
    idmap.enter_single_uid_namespace()
    return "uid %d is root in a new user namespace" % uid


def probe() -> Dict[str, str]:
    """{"choice": "subuid"|"single-uid"|"unavailable", "reason": ..., "remedy": ...}"""
    from rootless.linux.child import run_in_child
    ok, detail = run_in_child(_try_userns)
    if not ok:
        knobs = [fix for path, bad, fix in SYSCTLS if _read(path) == bad]
        return {"choice": "unavailable",
                "reason": "unprivileged user namespaces are not available (%s)" % detail,
                "remedy": "; ".join(knobs) or "ask the administrator to enable unprivileged "
                "user namespaces (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone, "
                "or AppArmor's userns restriction)"}
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    uids = idmap.read_subids("/etc/subuid", user, uid)
    gids = idmap.read_subids("/etc/subgid", user, uid)
    helpers = [idmap.helper("newuidmap"), idmap.helper("newgidmap")]
    missing = [why for path, why in helpers if not path]
    if uids and gids and not missing:
        return {"choice": "subuid",
                "reason": "newuidmap/newgidmap with %d subordinate uids and %d gids from "
                          "/etc/subuid and /etc/subgid" % (sum(r.count for r in uids), sum(r.count for r in gids)),
                "remedy": ""}
    why = missing + [w for w, have in (("no /etc/subuid range for %s" % user, uids),
                                         ("no /etc/subgid range for %s" % user, gids)) if not have]
    return {"choice": "single-uid",
            "reason": "; ".join(why) + ": container root is you, other ids are squashed",
            "remedy": "for full id mapping ask the administrator for subordinate ids "
                      "(usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s) "
                      "and the uidmap package" % user}


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""
