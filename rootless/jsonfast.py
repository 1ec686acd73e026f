"""json.loads and json.dumps without importing the json package.

``import json`` costs every command ~1 ms: the package's Python modules, and ``re`` with
``enum`` for the patterns they compile as they load. The work itself is done by the C
module ``_json`` either way, and this module calls it the way json does, so the results
are the same as json's for the same arguments (tests/unit/test_jsonfast.py compares
them). What needs json's Python code imports json: ``indent`` (its encoder is Python),
and every error, so that a bad document raises json's own JSONDecodeError (a ValueError)
with json's message. Input bytes are taken as UTF-8, as everything we read is; bytes
json would read in another encoding (a BOM, UTF-16/32) go to json.
"""

try:
    import _json
except ImportError:  # an interpreter without the accelerator: json's pure-Python code
    _json = None

_WHITESPACE = " \t\n\r"


class _Context:
    """The decoder attributes ``_json.make_scanner`` reads (json.JSONDecoder's defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scan = _json.make_scanner(_Context()) if _json is not None else None


def loads(document):
    """json.loads(document)."""
    text = document
    if _scan is None:
        return _json_module().loads(document)
    if not isinstance(text, str):
        if not isinstance(text, (bytes, bytearray)) or text[:3] == b"\xef\xbb\xbf" or 0 in text[:4]:
            return _json_module().loads(document)
        try:
            text = text.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return _json_module().loads(document)
    if text.startswith("\ufeff"):
        return _json_module().loads(document)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except (StopIteration, SystemError):
        # Not a document: json raises its own error for it. (The scanner raises json's
        # JSONDecodeError only once json.decoder is imported; before, it fails without
        # an exception, which Python reports as a SystemError.)
        return _json_module().loads(document)
    if end != len(text) and text[end:].strip(_WHITESPACE):
        return _json_module().loads(document)  # raises json's "Extra data"
    return value


def load(fp):
    """json.load(fp)."""
    return loads(fp.read())


def _default(o):
    raise TypeError("Object of type %s is not JSON serializable" % o.__class__.__name__)


def dumps(obj, sort_keys: bool = False, separators=None, ensure_ascii: bool = True) -> str:
    """json.dumps(obj, sort_keys=..., separators=..., ensure_ascii=...)."""
    if _json is None:
        return _json_module().dumps(obj, sort_keys=sort_keys, separators=separators, ensure_ascii=ensure_ascii)
    quote = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    if isinstance(obj, str):
        return quote(obj)
    item_separator, key_separator = separators or (", ", ": ")
    encode = _json.make_encoder({}, _default, quote, None, key_separator, item_separator,
                                sort_keys, False, True)
    return "".join(encode(obj, 0))


def dump(obj, fp, sort_keys: bool = False, separators=None, ensure_ascii: bool = True) -> None:
    """json.dump(obj, fp, ...)."""
    fp.write(dumps(obj, sort_keys=sort_keys, separators=separators, ensure_ascii=ensure_ascii))


def _json_module():
    import json
    return json
