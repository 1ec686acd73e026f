"""rootless.jsonfast gives json's results: the same text, the same values, json's errors."""

import io
import json
import math
import subprocess
import sys

import pytest

from conftest import REPO
from rootless import jsonfast

VALUES = [
    None, True, False, 0, -1, 2 ** 70, 1.5, -0.0, 1e300, float("inf"), float("-inf"), "", "a",
    "é\u2028\U0001f600\x00\x1f\"\\/", [], {}, [1, [2, [3]]], {"b": 1, "a": [None, {"c": "d"}]},
    {1: "int key", 2.5: "float key", False: "bool key", None: "none key"},
    {"id": "f" * 64, "status": "running", "pid": 1234, "ports": None, "labels": {"x": "y"}},
    ("tuple", 1),
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
@pytest.mark.parametrize("kw", [{}, {"sort_keys": True}, {"separators": (",", ":")},
                                {"ensure_ascii": False}, {"sort_keys": True, "separators": (",", ":")}])
def test_dumps_writes_what_json_writes(value, kw):
    try:
        expected = json.dumps(value, **kw)
    except TypeError as e:  # keys of several types cannot be sorted: json refuses, so do we
        with pytest.raises(TypeError) as ours:
            jsonfast.dumps(value, **kw)
        assert str(ours.value) == str(e)
        return
    assert jsonfast.dumps(value, **kw) == expected
    out = io.StringIO()
    jsonfast.dump(value, out, **kw)
    assert out.getvalue() == json.dumps(value, **kw)


def test_dumps_refuses_what_json_refuses():
    for bad in ({"k": object()}, {("tuple", "key"): 1}, {"s": {1, 2}}):
        with pytest.raises(TypeError) as ours:
            jsonfast.dumps(bad)
        with pytest.raises(TypeError) as theirs:
            json.dumps(bad)
        assert str(ours.value) == str(theirs.value)
    circular = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular reference"):
        jsonfast.dumps(circular)


DOCUMENTS = ['null', ' true ', '\n[1, 2.5, -3e2, "x"]\t', '{"a": {"b": [null, false]}}', '"\\ud83d\\ude00"',
             '{"k": NaN, "i": Infinity, "n": -Infinity}', '1' * 400, '{"a": 1, "a": 2}', '  "é"  ',
             json.dumps({"id": "f" * 64, "nested": [{"x": i} for i in range(50)]})]


@pytest.mark.parametrize("document", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_loads_reads_what_json_reads(document):
    ours, theirs = jsonfast.loads(document), json.loads(document)
    assert json.dumps(ours) == json.dumps(theirs)
    assert jsonfast.loads(document.encode()) == theirs or math.isnan(theirs.get("k", 0.0))
    assert jsonfast.load(io.StringIO(document)) == theirs or math.isnan(theirs.get("k", 0.0))


@pytest.mark.parametrize("document", ["", "   ", "[1,", '{"a" 1}', "[1] x", "nul", '"\\x"', '"a\nb"',
                                      "\ufeff[]", b"\xff", "{}}", "01"])
def test_loads_fails_as_json_fails(document):
    with pytest.raises(ValueError) as theirs:
        json.loads(document)
    with pytest.raises(ValueError) as ours:
        jsonfast.loads(document)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_loads_reads_bytes_in_the_encodings_json_reads():
    for encoding in ("utf-8", "utf-16", "utf-16-le", "utf-32", "utf-32-be"):
        data = '{"é": [1, "\u2603"]}'.encode(encoding)
        assert jsonfast.loads(data) == json.loads(data)
    assert jsonfast.loads(bytearray(b'{"a": 1}')) == {"a": 1}
    assert jsonfast.loads(b"\xef\xbb\xbf[]") == json.loads(b"\xef\xbb\xbf[]") == []


def test_a_bad_document_raises_jsons_error_before_json_is_imported():
    """The C scanner finds json's error class only once json.decoder is loaded."""
    probe = ("import sys; from rootless import jsonfast\n"
             "for bad in ('{not json', '[1, 2', '{\"a\": tru}', '\"\\\\q\"'):\n"
             "    try:\n"
             "        jsonfast.loads(bad)\n"
             "    except ValueError as e:\n"
             "        print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": REPO}).stdout.splitlines()
    assert out == ["JSONDecodeError %s" % e for e in (
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "Expecting ',' delimiter: line 1 column 6 (char 5)",
        "Expecting value: line 1 column 7 (char 6)",
        "Invalid \\escape: line 1 column 2 (char 1)")]


def test_importing_it_imports_neither_json_nor_re():
    probe = "import sys; from rootless import jsonfast; jsonfast.loads(jsonfast.dumps({'a': [1]})); " \
            "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": REPO}).stdout
    assert out.strip() == "[]"
