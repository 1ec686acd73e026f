"""``--log-driver`` and ``--log-opt``, checked as Docker checks them, for the container record.

dockerd checks in two places: the option names when the container is created
(``logger.ValidateLogOpts``, ``jsonfilelog.ValidateLogOpt``) and the values when the
logger starts (``jsonfilelog.New``). Here both happen at create, so a bad value is refused
before a container exists, with the messages dockerd gives. What Docker accepts is
accepted, down to its quirks: ``max-size`` is parsed with go-units' FromHumanSize, whose
units are decimal even when spelled ``KiB`` (``10m`` and ``10MiB`` are both 10,000,000
bytes); ``max-file`` without ``max-size`` is allowed and rotates nothing; numbers and
booleans are read by the rules of Go's strconv (no spaces, no underscores).
"""

import re
from typing import Dict, Iterable, Optional, Union

from rootless.errors import Unsupported, UsageError
from rootless.units import go_bool, go_size

DRIVERS = ("json-file", "none")
# Docker's other built-in drivers: known names get "not supported", others "no such driver".
OTHER_DRIVERS = ("local", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk",
                 "etwlogs", "gcplogs", "logentries")
JSON_FILE_OPTS = ("max-file", "max-size", "compress", "labels", "labels-regex", "env",
                  "env-regex", "tag")
BUILTIN_OPTS = ("mode", "max-buffer-size")  # every driver takes these (logger.builtInLogOpts)
MODES = ("", "blocking", "non-blocking")
# Fields of Docker's logger.Info that a --log-opt tag template may name (as {{.Field}}).
TAG_FIELDS = ("ID", "FullID", "Name", "ImageID", "ImageFullID", "ImageName", "DaemonName",
              "Command", "Hostname", "ContainerID", "ContainerName", "ContainerImageID",
              "ContainerImageName")
_TAG_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}")

_GO_INT = re.compile(r"[+-]?[0-9]+\Z")


def parse_log_opts(driver: Optional[str], opts: Union[Iterable[str], Dict[str, str], None]) -> dict:
    """``--log-driver`` and the ``--log-opt KEY=VALUE`` list -> the record's ``log`` dict::

        {"driver": "json-file", "max_size": 10000000 | None, "max_file": 3,
         "compress": False, "mode": "", "opts": {...the options as given}}
    """
    driver = driver or "json-file"
    opts = _as_dict(opts)
    if driver == "none":
        if opts:
            raise UsageError("invalid logging opts for driver none")
        return {"driver": "none", "opts": {}}
    _validate(driver, opts)
    max_size = _max_size(opts)
    max_file = _max_file(opts)
    compress = _compress(opts, max_size, max_file)
    for key in ("labels-regex", "env-regex"):
        if opts.get(key):
            _regex(key, opts[key])
    if opts.get("tag"):
        _check_tag(opts["tag"])
    return {"driver": driver, "max_size": max_size, "max_file": max_file, "compress": compress,
            "mode": opts.get("mode", ""), "opts": opts}


def _as_dict(opts) -> Dict[str, str]:
    """As the docker CLI reads --log-opt: KEY=VALUE, a bare KEY has the empty value."""
    if opts is None:
        return {}
    if isinstance(opts, dict):
        return dict(opts)
    out = {}
    for item in opts:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _validate(driver: str, opts: Dict[str, str]) -> None:
    """dockerd's checks at create: mode, max-buffer-size, the driver, the option names."""
    mode = opts.get("mode", "")
    if mode not in MODES:
        raise UsageError("logger: logging mode not supported: %s" % mode)
    if "max-buffer-size" in opts:
        if mode != "non-blocking":
            raise UsageError("logger: max-buffer-size option is only supported with 'mode=non-blocking'")
        try:
            go_size(opts["max-buffer-size"], binary=True)
        except ValueError as e:
            raise UsageError("error parsing option max-buffer-size: %s" % e)
    if driver in OTHER_DRIVERS:
        raise Unsupported("log driver %r is not supported: rootless writes json-file logs "
                          "(--log-driver json-file, the default, or none)" % driver)
    if driver not in DRIVERS:
        raise UsageError("logger: no log driver named '%s' is registered" % driver)
    for key in opts:
        if key not in JSON_FILE_OPTS and key not in BUILTIN_OPTS:
            raise UsageError("unknown log opt '%s' for json-file log driver" % key)


def _start_error(message: str) -> UsageError:
    # dockerd reports these when the container starts; the words after the colon are its.
    return UsageError("failed to initialize logging driver: %s" % message)


def _max_size(opts) -> Optional[int]:
    if "max-size" not in opts:
        return None
    try:
        size = go_size(opts["max-size"])
    except ValueError as e:
        raise _start_error(str(e))
    if size <= 0:
        raise _start_error("max-size must be a positive number")
    return size


def _max_file(opts) -> int:
    if "max-file" not in opts:
        return 1
    value = opts["max-file"]
    if not _GO_INT.match(value):
        raise _start_error('strconv.Atoi: parsing "%s": invalid syntax' % value)
    if not -2 ** 63 <= int(value) < 2 ** 63:
        raise _start_error('strconv.Atoi: parsing "%s": value out of range' % value)
    if int(value) < 1:
        raise _start_error("max-file cannot be less than 1")
    return int(value)


def _compress(opts, max_size, max_file) -> bool:
    if "compress" not in opts:
        return False
    try:
        compress = go_bool(opts["compress"])
    except ValueError as e:
        raise _start_error(str(e))
    if compress and (max_file == 1 or max_size is None):
        raise _start_error("compress cannot be true when max-file is less than 2 or max-size is not set")
    return compress


def _regex(key: str, pattern: str):
    try:
        return re.compile(pattern)
    except re.error as e:
        raise _start_error("error parsing regexp in %s %r: %s" % (key, pattern, e))


def _check_tag(template: str) -> None:
    for m in _TAG_ACTION.finditer(template):
        field = m.group(1)
        if not (field.startswith(".") and field[1:] in TAG_FIELDS):
            raise Unsupported("--log-opt tag: only {{.Field}} with one of %s is supported, not {{%s}}"
                              % (", ".join(TAG_FIELDS), field))


def render_tag(template: str, info: Dict[str, str]) -> str:
    """The tag template with each {{.Field}} replaced from ``info`` (see tag_info)."""
    return _TAG_ACTION.sub(lambda m: info.get(m.group(1)[1:], ""), template)


def tag_info(record: dict) -> Dict[str, str]:
    """The logger.Info fields a tag may name, from a container record."""
    import os
    cid, image_id = record.get("id", ""), record.get("image_id", "")
    name = record.get("name", "")
    return {"ID": cid[:12], "FullID": cid, "ContainerID": cid, "Name": name,
            "ContainerName": "/" + name, "ImageID": image_id[:12], "ImageFullID": image_id,
            "ContainerImageID": image_id, "ImageName": record.get("image", ""),
            "ContainerImageName": record.get("image", ""), "DaemonName": "docker",
            "Command": " ".join(record.get("command") or []), "Hostname": os.uname().nodename}


def extra_attrs(log: Optional[dict], record: dict, env: Iterable[str] = ()) -> Dict[str, str]:
    """The ``attrs`` of each log line (Docker's Info.ExtraAttributes plus the tag): the
    labels and environment variables that ``labels``, ``labels-regex``, ``env`` and
    ``env-regex`` name, and ``tag``. Empty for most containers."""
    opts = (log or {}).get("opts") or {}
    labels = record.get("labels") or {}
    extra = {}
    if opts.get("labels"):
        extra.update((k, labels[k]) for k in opts["labels"].split(",") if k in labels)
    if opts.get("labels-regex"):
        found = _regex("labels-regex", opts["labels-regex"])
        extra.update((k, v) for k, v in labels.items() if found.search(k))
    variables = dict(item.split("=", 1) for item in env if "=" in item)
    if variables and opts.get("env"):
        extra.update((k, variables[k]) for k in opts["env"].split(",") if k in variables)
    if variables and opts.get("env-regex"):
        found = _regex("env-regex", opts["env-regex"])
        extra.update((k, v) for k, v in variables.items() if found.search(k))
    if opts.get("tag"):
        extra["tag"] = render_tag(opts["tag"], tag_info(record))
    return extra
