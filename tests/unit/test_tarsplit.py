"""The tar-split record rebuilds a layer's stream byte for byte from its unpacked files."""

import hashlib
import io
import json
import os
import subprocess
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


SPARSE_SIZE = 16 << 20


def sparse_tar(tmp_path, fmt_args):
    """A tar written by GNU tar holding a real sparse member ``sparse`` (two 4 KiB data
    runs in 16 MiB) and a plain file ``plain``."""
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.truncate(SPARSE_SIZE)
        f.seek(8 << 20)
        f.write(b"middle")
        f.seek(SPARSE_SIZE - 4)
        f.write(b"end!")
    (src / "plain").write_bytes(b"plain data\n")
    out = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--numeric-owner"] + fmt_args + ["-C", str(src), "-cf", str(out),
                                                                         "sparse", "plain"], check=True)
    data = out.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember("sparse")
        assert member.issparse() and member.sparse[:2] == [(8 << 20, 4096), (SPARSE_SIZE - 4096, 4096)]
    return data


@pytest.mark.parametrize("fmt_args", [["--format=gnu"],  # old GNU: typeflag S, map in the header
                                      ["--format=posix", "--sparse-version=0.1"],
                                      ["--format=posix", "--sparse-version=1.0"]],
                         ids=["gnu", "pax-0.1", "pax-1.0"])
def test_gnu_sparse_member_is_kept_raw(tmp_path, mode, fmt_args):
    """A sparse member's stored bytes (its map and data runs) are not the file's bytes,
    so the record keeps them raw; the file itself comes out whole, and sparse."""
    data = sparse_tar(tmp_path, fmt_args)
    layer, rebuilt = unpack_and_rebuild(tmp_path, data, mode=mode)
    assert rebuilt == data
    unpacked = layer / "diff" / "sparse"
    expected = bytearray(SPARSE_SIZE)
    expected[8 << 20:(8 << 20) + 6] = b"middle"
    expected[-4:] = b"end!"
    assert unpacked.read_bytes() == bytes(expected)
    assert os.stat(unpacked).st_blocks * 512 <= 2 << 20  # holes are kept a MiB at a time
    with open(layer / "tar-split.json") as f:
        sources = [entry[1] for entry in json.load(f)["entries"]]
    assert sources == ["plain"]  # read back from its file; the sparse member from the record
