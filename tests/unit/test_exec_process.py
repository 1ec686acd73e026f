"""The exec'd process as derived from the container's (runtime.exec.process): pure."""

import pytest

from rootless.errors import UsageError
from rootless.runtime.exec import ExecOptions, process

BASE = {"terminal": True, "user": {"uid": 0, "gid": 0, "additionalGids": [10]},
        "args": ["sleep", "1000"], "env": ["PATH=/bin", "HOSTNAME=h", "HOME=/root", "A=base"],
        "cwd": "/srv", "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"]},
        "noNewPrivileges": True, "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10}]}


def test_the_container_process_with_the_command_replaced():
    proc = process(BASE, ExecOptions(["ls", "-l"], host_env={}), ["CAP_ALL"])
    assert proc["args"] == ["ls", "-l"]
    assert proc["terminal"] is False  # -t is exec's own choice, not the container's
    assert proc["env"] == BASE["env"]
    assert proc["cwd"] == "/srv"
    for key in ("user", "capabilities", "noNewPrivileges", "rlimits"):
        assert proc[key] == BASE[key]
    assert BASE["args"] == ["sleep", "1000"]  # not changed in place


def test_env_workdir_tty_privileged():
    opts = ExecOptions(["sh"], env=["A=exec", "B", "C", "=x"][:3], workdir="/tmp", tty=True,
                       privileged=True, host_env={"B": "from-host"})
    proc = process(BASE, opts, ["CAP_X", "CAP_Y"])
    assert proc["env"] == ["PATH=/bin", "HOSTNAME=h", "HOME=/root", "A=exec", "B=from-host", "TERM=xterm"]
    assert proc["cwd"] == "/tmp" and proc["terminal"] is True
    assert proc["capabilities"]["effective"] == ["CAP_X", "CAP_Y"]
    assert proc["capabilities"]["bounding"] == ["CAP_X", "CAP_Y"]


def test_user_drops_home_unless_given():
    assert "HOME=/root" not in process(BASE, ExecOptions(["sh"], user="1000", host_env={}), [])["env"]
    given = process(BASE, ExecOptions(["sh"], user="1000", env=["HOME=/h"], host_env={}), [])
    assert "HOME=/h" in given["env"]


@pytest.mark.parametrize("bad", [dict(args=[]), dict(args=["sh"], workdir="rel")])
def test_refused(bad):
    with pytest.raises(UsageError):
        process(BASE, ExecOptions(**bad), [])


def test_bad_env():
    with pytest.raises(UsageError, match="invalid environment variable"):
        process(BASE, ExecOptions(["sh"], env=["=x"], host_env={}), [])
