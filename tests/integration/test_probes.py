"""The fallback ladders' probes, as `rootless info` reports them (run as an ordinary user)."""

import json
import os

from conftest import IN_CI, _has_subuid


def info(rl, *extra):
    return json.loads(rl.out("info", "--format", "json", *extra))


def test_id_mapping_ladder_matches_this_user(rl, unprivileged):
    probes = info(rl)["Probes"]
    if _has_subuid():
        assert probes["idmap"]["choice"] == "subuid"
        assert "newuidmap" in probes["idmap"]["reason"]
    else:
        assert probes["idmap"]["choice"] == "single-uid"
        assert "usermod --add-subuids" in probes["idmap"]["remedy"]


def test_rootfs_driver_is_probed_with_a_real_mount(rl, unprivileged):
    probes = info(rl)["Probes"]
    choice = probes["rootfs"]["choice"]
    assert choice in ("overlay", "fuse-overlayfs", "copy")
    if IN_CI:  # CI machines have native overlayfs in user namespaces
        assert choice == "overlay", probes["rootfs"]
    # the probe's scratch directories are gone
    assert [n for n in os.listdir(os.path.join(rl.root, "tmp"))] == []


def test_probes_are_cached_and_refreshable(rl, unprivileged):
    first = info(rl)
    import zlib
    # One cache file per storage root (two roots used in turn must not evict each other).
    cache = os.path.join(first["RunDir"], "probes-%08x.json" % zlib.crc32(os.path.realpath(rl.root).encode()))
    assert os.path.exists(cache), os.listdir(first["RunDir"])
    stamp = os.stat(cache).st_mtime_ns
    assert info(rl)["Probes"] == first["Probes"]
    assert os.stat(cache).st_mtime_ns == stamp
    assert info(rl, "--probe")["Probes"] == first["Probes"]
    assert os.stat(cache).st_mtime_ns != stamp


def test_info_text_names_each_ladder(rl, unprivileged):
    text = rl.out("info")
    assert "Id mapping:" in text and "Rootfs driver:" in text and "Why:" in text
