"""--pid as create checks it, before anything is pulled or made (pure)."""

import pytest

from rootless.bundle.create import pid_mode
from rootless.errors import UsageError


def test_private_and_container_modes():
    assert pid_mode("") == pid_mode("private") == ""
    assert pid_mode("container:ranks") == "ranks"


@pytest.mark.parametrize("text,words", [
    ("host", "--pid host is not supported"), ("container:", "invalid PID mode 'container:'"),
    ("ns:/proc/1/ns/pid", "invalid PID mode 'ns:/proc/1/ns/pid'")])
def test_other_modes_are_refused_with_what_to_use(text, words):
    with pytest.raises(UsageError) as e:
        pid_mode(text)
    assert words in str(e.value) and ("container:NAME" in str(e.value))
