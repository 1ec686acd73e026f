"""rootless.storage.tarinfo: FastTarInfo reads every header exactly as tarfile does."""

import io
import random
import tarfile

import pytest

from rootless.errors import InvalidImage
from rootless.storage.tarinfo import FastTarInfo

FIELDS = ("name", "mode", "uid", "gid", "size", "mtime", "chksum", "type", "linkname", "uname", "gname",
          "devmajor", "devminor")


def parse(cls, buf):
    """(the fields, or the exception's type and text) of one header."""
    try:
        info = cls.frombuf(buf, "utf-8", "surrogateescape")
    except Exception as e:  # the comparison is the point
        return ("error", type(e), str(e))
    return tuple(getattr(info, f) for f in FIELDS) + (getattr(info, "_sparse_structs", None), type(info))


def same(buf):
    fast, slow = parse(FastTarInfo, buf), parse(tarfile.TarInfo, buf)
    if fast[0] != "error":
        fast = fast[:-1] + (fast[-1] is FastTarInfo,)
        slow = slow[:-1] + (slow[-1] is tarfile.TarInfo,)
    assert fast == slow, buf


def headers():
    """Header blocks for every kind of member, in the three formats tarfile writes."""
    out = []
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        members = []
        for name, kind in [("file", tarfile.REGTYPE), ("dir", tarfile.DIRTYPE), ("dir/trailing/", tarfile.DIRTYPE),
                           ("link", tarfile.SYMTYPE), ("hard", tarfile.LNKTYPE), ("fifo", tarfile.FIFOTYPE),
                           ("chr", tarfile.CHRTYPE), ("blk", tarfile.BLKTYPE), ("x/" * 60 + "deep", tarfile.REGTYPE),
                           ("n\u00e4me with spaces", tarfile.REGTYPE), ("v7dir/", tarfile.AREGTYPE)]:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode, info.uid, info.gid, info.mtime = 0o4755, 1000, 1000, 1700000000
            info.uname, info.gname = "user", "group"
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = "target/" * 3
            if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                info.devmajor, info.devminor = 8, 1
            members.append(info)
        if fmt == tarfile.GNU_FORMAT:  # numbers too large for octal: base-256
            big = tarfile.TarInfo("big")
            big.uid, big.mtime = 1 << 40, -5
            members.append(big)
        for info in members:
            try:
                block = info.tobuf(fmt, "utf-8", "surrogateescape")
            except ValueError:
                continue  # (a name ustar cannot hold)
            out += [block[i:i + 512] for i in range(0, len(block), 512)]
    return out


@pytest.mark.parametrize("buf", headers(), ids=lambda b: repr(b[:20]))
def test_identical_on_real_headers(buf):
    same(buf)


def test_takes_the_common_header_itself():
    info = tarfile.TarInfo("usr/bin/tool")
    info.size, info.mode = 1234, 0o755
    buf = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    fast = FastTarInfo.frombuf(buf, "utf-8", "surrogateescape")
    assert (fast.name, fast.size, fast.mode) == ("usr/bin/tool", 1234, 0o755)
    assert type(fast) is FastTarInfo


def test_edge_blocks():
    for buf in (b"", b"\0" * 512, b"\0" * 100, b" " * 512, b"\xff" * 512, b"7" * 512):
        same(buf)


def test_identical_on_damaged_headers():
    """Random bytes changed in real headers, with the checksum fixed up half the time (so
    the damage reaches the field parsers): the same result or the same error, always."""
    rng = random.Random(1234)
    base = headers()
    alphabet = b"\0 01234567789\x80\xff/aZ\t\n\x1c+-_."
    for n in range(6000):
        buf = bytearray(rng.choice(base))
        for _ in range(rng.randint(1, 4)):
            at = rng.choice([rng.randrange(512), rng.randrange(100, 160), rng.randrange(329, 345)])
            buf[at] = rng.choice(alphabet) if rng.random() < 0.8 else rng.randrange(256)
        if n % 2:
            buf[148:156] = b" " * 8
            buf[148:155] = b"%06o\0" % sum(buf)
        same(bytes(buf))


def test_unpack_uses_it_and_tarfile_still_reads_pax_names(tmp_path):
    from rootless.storage import layers
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("d/" + "long" * 40)
        payload = b"content"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    data.seek(0)
    dest = tmp_path / "dest"
    dest.mkdir()
    record = layers.unpack(data, str(dest))
    assert record.entries == 1
    assert (dest / "d" / ("long" * 40)).read_bytes() == b"content"


def test_a_bad_checksum_is_still_refused(tmp_path):
    from rootless.storage import layers
    info = tarfile.TarInfo("f")
    buf = bytearray(info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))
    buf[0:1] = b"g"  # the name changes, the checksum does not
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InvalidImage):
        layers.unpack(io.BytesIO(bytes(buf) + b"\0" * 1024), str(dest))
