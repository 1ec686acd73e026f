"""The tar-split record rebuilds a layer's stream byte for byte from its unpacked files."""

import hashlib
import io
import os
import tarfile
import tempfile

import pytest

from imagetools import sha, tar_bytes, unpack_growing
from rootless.errors import DigestMismatch
from rootless.storage import layers
from rootless.storage.tarsplit import Reassembled


@pytest.fixture(params=["stream", "region", "growing"])
def mode(request):
    return request.param


def unpack_recording(data, layer, mode="stream"):
    """Unpack ``data`` into layer/diff with a tar-split record, as a stream or as a region
    of a larger file (the two recorders must write the same record)."""
    if mode == "stream":
        return layers.unpack(io.BytesIO(data), str(layer / "diff"), split_dir=str(layer))
    if mode == "growing":
        return unpack_growing(data, str(layer / "diff"), split_dir=str(layer))
    with tempfile.TemporaryFile() as f:
        f.write(b"P" * 512 + data + b"Q" * 700)
        f.flush()
        return layers.unpack_region(f.fileno(), 512, len(data), str(layer / "diff"), split_dir=str(layer))


def unpack_and_rebuild(tmp_path, data, read_size=None, mode="stream"):
    layer = tmp_path / "layer"
    (layer / "diff").mkdir(parents=True)
    record = unpack_recording(data, layer, mode)
    assert record.reproducible
    with Reassembled(str(layer), sha(data)) as r:
        if read_size:
            chunks = []
            while True:
                chunk = r.read(read_size)
                if not chunk:
                    break
                chunks.append(chunk)
            return layer, b"".join(chunks)
        return layer, r.read()


ENTRIES = [
    {"name": "etc", "type": "dir"},
    {"name": "etc/small", "data": b"x"},
    {"name": "etc/exact-block", "data": b"y" * 512},
    {"name": "big", "data": os.urandom(3 << 20)},  # larger than the recorder's keep-back
    {"name": "zeros", "data": bytes(2 << 20)},     # written as a hole, read back as zeros
    {"name": "link", "type": "symlink", "target": "/etc/small"},
    {"name": "hard", "type": "hardlink", "target": "etc/small"},
    {"name": "empty", "data": b""},
    {"name": "locked", "data": b"secret", "mode": 0o000},
    {"name": "ro", "type": "dir", "mode": 0o500},
    {"name": "ro/inside", "data": b"in"},
    {"name": "n" * 150 + "/long-name", "data": b"pax path"},
    {"name": ".wh.gone"},
]


@pytest.mark.parametrize("read_size", [None, 1, 511, 10240, 1 << 20])
def test_rebuilds_the_exact_stream(tmp_path, read_size, mode):
    data = tar_bytes(ENTRIES)
    _, rebuilt = unpack_and_rebuild(tmp_path, data, read_size, mode)
    assert hashlib.sha256(rebuilt).hexdigest() == hashlib.sha256(data).hexdigest()


def test_record_is_small_next_to_the_data(tmp_path, mode):
    data = tar_bytes(ENTRIES)
    layer, _ = unpack_and_rebuild(tmp_path, data, mode=mode)
    assert os.path.getsize(layer / "tar-split.gz") < 64 << 10


def test_changed_file_is_detected(tmp_path, mode):
    data = tar_bytes(ENTRIES)
    layer, _ = unpack_and_rebuild(tmp_path, data, mode=mode)
    with open(layer / "diff" / "etc" / "small", "wb") as f:
        f.write(b"z")
    with pytest.raises(DigestMismatch):
        with Reassembled(str(layer), sha(data)) as r:
            r.read()


def test_a_layer_rewriting_its_own_file_is_not_reproducible(tmp_path, mode):
    data = tar_bytes([{"name": "a", "data": b"one"}, {"name": "a", "data": b"two"}])
    layer = tmp_path / "layer"
    (layer / "diff").mkdir(parents=True)
    record = unpack_recording(data, layer, mode)
    assert not record.reproducible


def test_gnu_sparse_member_is_kept_raw(tmp_path, mode):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("plain")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"abcd"))
    data = buf.getvalue()
    _, rebuilt = unpack_and_rebuild(tmp_path, data, mode=mode)
    assert rebuilt == data
