"""The spellings of -v, --mount and --tmpfs (bundle.mounts), as Docker reads them."""

import pytest

from rootless.bundle import mounts
from rootless.errors import UsageError


def test_volume_spellings():
    m = mounts.parse_volume("/srv/data:/data:ro,rslave")
    assert (m.kind, m.source, m.target, m.readonly, m.propagation) == ("bind", "/srv/data", "/data", True, "rslave")
    m = mounts.parse_volume("cache:/var/cache/:nocopy")
    assert (m.kind, m.source, m.target, m.nocopy) == ("volume", "cache", "/var/cache", True)
    m = mounts.parse_volume("/scratch")
    assert (m.kind, m.source, m.target) == ("volume", "", "/scratch")
    m = mounts.parse_volume("./src:/src:z", cwd="/home/u/proj")
    assert (m.kind, m.source) == ("bind", "/home/u/proj/src")


@pytest.mark.parametrize("spec, message", [
    ("/data:ro", "invalid volume specification: '/data:ro'"),
    ("a:b:c:d", "invalid volume specification"),
    ("/x:rel", "mount path must be absolute"),
    ("/x:/", "destination can't be '/'"),
    ("/x:/y:ro,rw", "invalid mode: ro,rw"),
    ("name:/y:rshared", "a propagation is for bind mounts"),
    ("/x:/y:nocopy", "nocopy is for volumes"),
    ("we/ird:/y", "includes invalid characters for a local volume name"),
])
def test_bad_volume_specs(spec, message):
    with pytest.raises(UsageError) as e:
        mounts.parse_volume(spec)
    assert message in str(e.value)


def test_mount_spellings():
    m = mounts.parse_mount("type=bind,src=/srv,dst=/srv,readonly,bind-propagation=rshared")
    assert (m.kind, m.source, m.target, m.readonly, m.propagation) == ("bind", "/srv", "/srv", True, "rshared")
    m = mounts.parse_mount("target=/v,ro=false")  # type defaults to volume; an anonymous one
    assert (m.kind, m.source, m.target, m.readonly) == ("volume", "", "/v", False)
    m = mounts.parse_mount("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770")
    assert (m.kind, m.options) == ("tmpfs", ["size=67108864", "mode=1770"])


@pytest.mark.parametrize("spec, message", [
    ("type=bind,src=/x", "target is required"),
    ("type=bind,dst=/x", "field Source must not be empty"),
    ("type=tmpfs,src=/x,dst=/y", "field Source must not be specified"),
    ("type=volume,dst=/x,tmpfs-size=1m", "field tmpfs-size is not allowed"),
    ("type=bind,src=/x,dst=/y,colour=red", "unexpected key 'colour'"),
    ("type=bind,src=/x,dst=/y,readonly=maybe", "invalid value for readonly"),
    ("type=bind,src=/x,target", "invalid field 'target' must be a key=value pair"),
])
def test_bad_mount_specs(spec, message):
    with pytest.raises(UsageError) as e:
        mounts.parse_mount(spec)
    assert message in str(e.value)


def test_tmpfs_and_the_bundle_entries():
    asked = mounts.collect(["/a:/x/y", "vol:/x"], [], ["/t:size=1m,exec,mode=700"])
    entries = mounts.entries(asked, {1: "/root/volumes/vol/_data"})
    # parents first, so that /x does not hide /x/y; --tmpfs has Docker's defaults, exec lifting noexec
    assert [(e["destination"], e["type"]) for e in entries] == [("/x", "bind"), ("/t", "tmpfs"), ("/x/y", "bind")]
    assert entries[1]["options"] == ["nosuid", "nodev", "size=1048576", "mode=700"]
    assert entries[0] == {"destination": "/x", "type": "bind", "source": "/root/volumes/vol/_data",
                          "options": ["rbind", "rw"]}
    with pytest.raises(UsageError) as e:
        mounts.collect(["/a:/x"], ["type=tmpfs,dst=/x"], [])
    assert str(e.value) == "Duplicate mount point: /x"
