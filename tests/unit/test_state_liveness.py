"""state.living_since: an owner or first process that is a zombie has ended (real
processes, no mocks: a child this test has not reaped yet is a zombie)."""

import os

from rootless.runtime import state


def test_a_live_process_and_its_start_time():
    me = state.me()
    assert state.living_since(me["pid"], me["start"])
    assert not state.living_since(me["pid"], me["start"] + 1)  # the pid reused by another
    assert not state.living_since(None, me["start"]) and not state.living_since(me["pid"], None)


def test_a_zombie_has_ended():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    start = state.process_start_time(pid)
    while not open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z":
        pass
    try:
        assert start is not None and not state.living_since(pid, start)
    finally:
        os.waitpid(pid, 0)
    assert state.process_start_time(pid) is None and not state.living_since(pid, start)
