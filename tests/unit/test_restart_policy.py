"""rootless.bundle.create.restart_policy: --restart checked as docker/cli's
ParseRestartPolicy and the daemon's ValidateRestartPolicy do, with their wording."""

import pytest

from rootless.bundle.create import restart_policy
from rootless.errors import UsageError


@pytest.mark.parametrize("text, name, count", [
    ("", "no", 0), ("no", "no", 0), ("always", "always", 0), ("unless-stopped", "unless-stopped", 0),
    ("on-failure", "on-failure", 0), ("on-failure:2", "on-failure", 2), ("on-failure:+2", "on-failure", 2),
    ("on-failure:", "on-failure", 0), ("always:0", "always", 0), ("no:0", "no", 0),
])
def test_accepted(text, name, count):
    assert restart_policy(text, False) == {"name": name, "maximum_retry_count": count}


@pytest.mark.parametrize("text, message", [
    ("sometimes", "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', "
                  "'on-failure', or 'unless-stopped'"),
    ("ON-FAILURE", "invalid restart policy: unknown policy 'ON-FAILURE'; use one of 'no', 'always', "
                   "'on-failure', or 'unless-stopped'"),
    ("always:3", "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
    ("unless-stopped:1", "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
    ("always:-1", "invalid restart policy: maximum retry count can only be used with 'on-failure' "
                  "and cannot be negative"),
    ("on-failure:-1", "invalid restart policy: maximum retry count cannot be negative"),
    ("on-failure:x", "invalid restart policy format: maximum retry count must be an integer"),
    ("on-failure: 2", "invalid restart policy format: maximum retry count must be an integer"),
    (":3", "invalid restart policy format: no policy provided before colon"),
])
def test_refused_with_dockers_wording(text, message):
    with pytest.raises(UsageError) as e:
        restart_policy(text, False)
    assert str(e.value) == message


def test_rm_conflicts_with_any_policy_but_no():
    assert restart_policy("no", True)["name"] == "no"
    for text in ("always", "sometimes", "on-failure:3"):
        with pytest.raises(UsageError, match="^conflicting options: cannot specify both --restart and --rm$"):
            restart_policy(text, True)
    # The client's syntax is checked before the conflict, as docker run does.
    with pytest.raises(UsageError, match="must be an integer"):
        restart_policy("on-failure:x", True)


def test_restart_wanted_as_dockers_restartmanager():
    from rootless.runtime.restart import restart_wanted
    on3 = {"name": "on-failure", "maximum_retry_count": 2}
    assert restart_wanted(on3, 3, 0, False) and restart_wanted(on3, 3, 1, False)
    assert not restart_wanted(on3, 3, 2, False)
    assert not restart_wanted({"name": "on-failure"}, 0, 0, False)
    assert restart_wanted({"name": "on-failure"}, 1, 99, False)
    assert restart_wanted({"name": "always"}, 0, 5, False)
    # A kill that did not cancel (another signal than a configured stop signal):
    # always restarts, unless-stopped does not.
    assert restart_wanted({"name": "always"}, 0, 0, True)
    assert not restart_wanted({"name": "unless-stopped"}, 0, 0, True)
    assert restart_wanted({"name": "unless-stopped"}, 0, 0, False)
    for name in ("always", "unless-stopped", "on-failure"):
        assert not restart_wanted({"name": name}, 1, 0, True, cancelled=True)
    assert not restart_wanted({"name": "no"}, 1, 0, False)


def test_which_kills_cancel_the_policy():
    import signal
    from rootless.runtime.lifecycle import cancels_restart
    assert cancels_restart(signal.SIGKILL, "SIGUSR1")
    assert cancels_restart(signal.SIGHUP, "")  # no stop signal configured: any signal
    assert cancels_restart(signal.SIGUSR1, "SIGUSR1")
    assert not cancels_restart(signal.SIGHUP, "SIGUSR1")
