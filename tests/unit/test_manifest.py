"""rootless.image.manifest: validation of manifests and configs, and what we write."""

import collections
import json

import pytest

from imagetools import config_for, sha
from rootless.errors import InvalidImage
from rootless.image import manifest as mf

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64

Layer = collections.namedtuple("Layer", "media_type blob_size blob")


def cfg(**changes):
    obj = json.loads(config_for([b"layer one", b"layer two"]))
    for key, value in changes.items():
        if value is Ellipsis:
            obj.pop(key, None)
        else:
            obj[key] = value
    return json.dumps(obj).encode()


# -- configs ---------------------------------------------------------------------------------

def test_parse_config_valid():
    c = mf.parse_config(cfg())
    assert c["rootfs"]["diff_ids"] == [sha(b"layer one"), sha(b"layer two")]
    assert c["architecture"] == "amd64" and c["config"]["Cmd"] == ["sh"]


def test_parse_config_minimal_and_null_config():
    c = mf.parse_config(b'{"rootfs": {"type": "layers", "diff_ids": []}, "config": null}')
    assert c["rootfs"]["diff_ids"] == [] and c["config"] is None


@pytest.mark.parametrize("data", [
    cfg(rootfs=Ellipsis),
    cfg(rootfs=None),
    cfg(rootfs=[]),
    cfg(rootfs={"type": "layers"}),
    cfg(rootfs={"type": "other", "diff_ids": []}),
    cfg(rootfs={"type": "layers", "diff_ids": "sha256:" + "1" * 64}),
    cfg(rootfs={"type": "layers", "diff_ids": ["sha256:xyz"]}),
    cfg(rootfs={"type": "layers", "diff_ids": ["sha256:" + "A" * 64]}),
    cfg(rootfs={"type": "layers", "diff_ids": ["sha512:" + "1" * 128]}),
    cfg(rootfs={"type": "layers", "diff_ids": [D1, 42]}),
    cfg(rootfs={"type": "layers", "diff_ids": ["sha256:../../../etc/passwd"]}),
    cfg(architecture=64),
    cfg(os=["linux"]),
    cfg(created=1700000000),
    cfg(config="sh"),
    cfg(config=["sh"]),
    cfg(history={"created_by": "x"}),
], ids=["missing-rootfs", "null-rootfs", "list-rootfs", "no-diff_ids", "wrong-type", "diff_ids-string",
        "short-digest", "upper-digest", "sha512", "non-string", "path", "arch", "os", "created",
        "config-string", "config-list", "history"])
def test_parse_config_refuses_malformed(data):
    with pytest.raises(InvalidImage):
        mf.parse_config(data)


@pytest.mark.parametrize("data", [b"[]", b'"x"', b"null", b"42", b"true"])
def test_parse_config_refuses_non_object(data):
    with pytest.raises(InvalidImage):
        mf.parse_config(data)


@pytest.mark.parametrize("data", [b"", b"{", b"{'a': 1}", b"\xff\xfe{", b"{} trailing"])
def test_parse_config_refuses_malformed_json(data):
    with pytest.raises(InvalidImage):
        mf.parse_config(data)


def test_oversized_json_is_refused():
    data = b'{"rootfs": {"type": "layers", "diff_ids": []}, "pad": "' + b"x" * mf.MAX_JSON + b'"}'
    with pytest.raises(InvalidImage):
        mf.parse_config(data)


# -- manifests --------------------------------------------------------------------------------

def oci_manifest(**changes):
    m = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
         "config": {"mediaType": mf.OCI_CONFIG, "digest": D1, "size": 100},
         "layers": [{"mediaType": mf.OCI_LAYER + "+gzip", "digest": D2, "size": 200},
                    {"mediaType": mf.OCI_LAYER, "digest": D3, "size": 0}]}
    for key, value in changes.items():
        if value is Ellipsis:
            m.pop(key, None)
        else:
            m[key] = value
    return m


def test_parse_oci_manifest():
    m = mf.parse_manifest(json.dumps(oci_manifest()).encode())
    assert m["config"]["digest"] == D1 and [l["digest"] for l in m["layers"]] == [D2, D3]
    assert not mf.is_index(m)


def test_oci_manifest_media_type_is_optional():
    m = mf.parse_manifest(json.dumps(oci_manifest(mediaType=Ellipsis)).encode())
    assert len(m["layers"]) == 2 and not mf.is_index(m)


def test_parse_docker_schema2_manifest():
    data = json.dumps({
        "schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST,
        "config": {"mediaType": mf.DOCKER_CONFIG, "size": 1469, "digest": D1},
        "layers": [{"mediaType": mf.DOCKER_LAYER_GZIP, "size": 2479, "digest": D2}]}).encode()
    m = mf.parse_manifest(data)
    assert m["mediaType"] == mf.DOCKER_MANIFEST and m["layers"][0]["size"] == 2479


def test_schema1_is_refused_with_a_clear_message():
    data = json.dumps({"schemaVersion": 1, "name": "library/busybox", "tag": "latest",
                       "fsLayers": [{"blobSum": D1}], "history": []}).encode()
    with pytest.raises(InvalidImage) as e:
        mf.parse_manifest(data)
    assert "schema 1" in str(e.value)


@pytest.mark.parametrize("m", [
    oci_manifest(schemaVersion=3),
    oci_manifest(schemaVersion=Ellipsis),
    oci_manifest(schemaVersion="2"),
    oci_manifest(mediaType="application/json"),
    oci_manifest(mediaType=mf.OCI_CONFIG),
    oci_manifest(config=Ellipsis),
    oci_manifest(config={"mediaType": mf.OCI_CONFIG, "digest": "sha256:abc", "size": 1}),
    oci_manifest(config={"mediaType": mf.OCI_CONFIG, "digest": D1}),
    oci_manifest(config={"mediaType": mf.OCI_CONFIG, "digest": D1, "size": -1}),
    oci_manifest(config={"mediaType": mf.OCI_CONFIG, "digest": D1, "size": "100"}),
    oci_manifest(config={"mediaType": 7, "digest": D1, "size": 1}),
    oci_manifest(layers=Ellipsis),
    oci_manifest(layers={"digest": D2}),
    oci_manifest(layers=[{"mediaType": mf.OCI_LAYER, "digest": "md5:" + "a" * 32, "size": 1}]),
    oci_manifest(layers=["sha256:" + "2" * 64]),
    [oci_manifest()],
], ids=["v3", "no-version", "string-version", "unknown-media", "config-media", "no-config",
        "config-digest", "config-no-size", "config-negative", "config-string-size", "config-media-int",
        "no-layers", "layers-dict", "layer-digest", "layer-string", "list"])
def test_parse_manifest_refuses_malformed(m):
    with pytest.raises(InvalidImage):
        mf.parse_manifest(json.dumps(m).encode())


def test_parse_manifest_refuses_bad_json():
    with pytest.raises(InvalidImage):
        mf.parse_manifest(b"<html>not found</html>")


INDEX = {
    "schemaVersion": 2, "mediaType": mf.OCI_INDEX,
    "manifests": [
        {"mediaType": mf.OCI_MANIFEST, "digest": D1, "size": 10,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": mf.OCI_MANIFEST, "digest": D2, "size": 11,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + "4" * 64, "size": 12,
         "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
        {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + "5" * 64, "size": 13,
         "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + "6" * 64, "size": 14,
         "platform": {"os": "windows", "architecture": "amd64"}},
        {"mediaType": mf.OCI_MANIFEST, "digest": D3, "size": 15,
         "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
    ]}


@pytest.mark.parametrize("index", [
    INDEX,
    dict(INDEX, mediaType=mf.DOCKER_LIST),
    {k: v for k, v in INDEX.items() if k != "mediaType"},
], ids=["oci", "docker-list", "no-media-type"])
def test_index_detection(index):
    m = mf.parse_manifest(json.dumps(index).encode())
    assert mf.is_index(m)
    assert len(m["manifests"]) == 6


def test_pick_platform():
    assert [e["digest"] for e in mf.pick_platform(INDEX, {"os": "linux", "architecture": "amd64"})] == [D1]
    # No variant wanted: the variant entry is still a match, only a looser one.
    assert [e["digest"] for e in mf.pick_platform(INDEX, {"os": "linux", "architecture": "arm64"})] == [D2]
    assert [e["digest"] for e in mf.pick_platform(INDEX, {"os": "linux", "architecture": "arm64",
                                                          "variant": "v8"})] == [D2]
    picked = mf.pick_platform(INDEX, {"os": "linux", "architecture": "arm", "variant": "v7"})
    assert [e["digest"] for e in picked] == ["sha256:" + "5" * 64, "sha256:" + "4" * 64]
    assert mf.pick_platform(INDEX, {"os": "linux", "architecture": "s390x"}) == []


def test_pick_platform_entry_without_platform_matches():
    index = {"schemaVersion": 2, "manifests": [{"mediaType": mf.OCI_MANIFEST, "digest": D1, "size": 1}]}
    assert mf.pick_platform(index, {"os": "linux", "architecture": "riscv64"}) == index["manifests"]


@pytest.mark.parametrize("index", [
    {"schemaVersion": 2},
    {"schemaVersion": 2, "manifests": {}},
    {"schemaVersion": 2, "manifests": [{"digest": "sha256:nope", "size": 1, "platform": {}}]},
    {"schemaVersion": 2, "manifests": ["sha256:" + "1" * 64]},
])
def test_pick_platform_refuses_malformed(index):
    with pytest.raises(InvalidImage):
        mf.pick_platform(index, {"os": "linux", "architecture": "amd64"})


def test_host_platform():
    plat = mf.host_platform()
    assert plat["os"] == "linux" and plat["architecture"]
    assert plat["architecture"] not in ("x86_64", "aarch64")


# -- what we write ----------------------------------------------------------------------------

LAYERS = [Layer(mf.OCI_LAYER + "+gzip", 200, D2), Layer(mf.DOCKER_LAYER, 300, D3)]


def test_build_manifest_oci():
    data = mf.build_manifest(D1, 100, LAYERS, docker=False)
    assert json.loads(data) == {
        "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
        "config": {"mediaType": mf.OCI_CONFIG, "size": 100, "digest": D1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 200, "digest": D2},
                   {"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": 300, "digest": D3}]}
    assert mf.parse_manifest(data)["layers"][1]["size"] == 300


def test_build_manifest_docker():
    data = mf.build_manifest(D1, 100, LAYERS, docker=True)
    assert json.loads(data) == {
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 100, "digest": D1},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 200, "digest": D2},
                   {"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "size": 300, "digest": D3}]}


def test_build_manifest_is_canonical():
    """Docker's layout: 3-space indent, keys in schema order, so digests are reproducible."""
    data = mf.build_manifest(D1, 7, [Layer(mf.DOCKER_LAYER_GZIP, 9, D2)], docker=True)
    expected = (
        '{\n'
        '   "schemaVersion": 2,\n'
        '   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",\n'
        '   "config": {\n'
        '      "mediaType": "application/vnd.docker.container.image.v1+json",\n'
        '      "size": 7,\n'
        '      "digest": "%s"\n'
        '   },\n'
        '   "layers": [\n'
        '      {\n'
        '         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",\n'
        '         "size": 9,\n'
        '         "digest": "%s"\n'
        '      }\n'
        '   ]\n'
        '}') % (D1, D2)
    assert data == expected.encode()
    assert mf.build_manifest(D1, 7, [Layer(mf.DOCKER_LAYER_GZIP, 9, D2)], docker=True) == data
    assert mf.sha256(data) == mf.sha256(expected.encode())


def test_build_manifest_no_layers():
    m = json.loads(mf.build_manifest(D1, 1, [], docker=False))
    assert m["layers"] == []


@pytest.mark.parametrize("media, kind", [
    ("application/vnd.oci.image.layer.v1.tar+gzip", "gzip"),
    ("application/vnd.oci.image.layer.v1.tar+zstd", "zstd"),
    ("application/vnd.oci.image.layer.v1.tar", ""),
    ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "gzip"),
    ("application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip"),
    ("application/vnd.docker.image.rootfs.diff.tar", ""),
    ("", ""),
])
def test_compression_of(media, kind):
    assert mf.compression_of(media) == kind


@pytest.mark.parametrize("compression, docker, media", [
    ("gzip", True, mf.DOCKER_LAYER_GZIP),
    ("", True, mf.DOCKER_LAYER),
    ("gzip", False, "application/vnd.oci.image.layer.v1.tar+gzip"),
    ("zstd", False, "application/vnd.oci.image.layer.v1.tar+zstd"),
    ("", False, "application/vnd.oci.image.layer.v1.tar"),
])
def test_layer_media_type(compression, docker, media):
    assert mf.layer_media_type(compression, docker) == media


def test_sha256():
    assert mf.sha256(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert mf.sha256(b"abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_check_digest():
    assert mf.check_digest(D1, "x") == D1
    for bad in (None, 1, "", D1 + "\n", D1.upper(), "sha256:" + "1" * 63):
        with pytest.raises(InvalidImage):
            mf.check_digest(bad, "x")
