"""rootless.runtime.logopts: --log-driver/--log-opt, with dockerd's checks and messages."""

import pytest

from rootless.errors import Unsupported, UsageError
from rootless.runtime.logopts import extra_attrs, parse_log_opts
from rootless.units import go_bool, go_size


def test_defaults_are_json_file_without_rotation():
    assert parse_log_opts(None, []) == {"driver": "json-file", "max_size": None, "max_file": 1,
                                        "compress": False, "mode": "", "opts": {}}
    assert parse_log_opts("json-file", None)["driver"] == "json-file"


def test_rotation_options():
    log = parse_log_opts("json-file", ["max-size=10m", "max-file=3", "compress=true"])
    assert (log["max_size"], log["max_file"], log["compress"]) == (10000000, 3, True)
    assert log["opts"] == {"max-size": "10m", "max-file": "3", "compress": "true"}
    # max-file without max-size is accepted (and rotates nothing), as dockerd does.
    assert parse_log_opts("json-file", ["max-file=5"])["max_size"] is None
    assert parse_log_opts("json-file", {"max-file": "+2"})["max_file"] == 2


def test_none_takes_no_options():
    assert parse_log_opts("none", []) == {"driver": "none", "opts": {}}
    with pytest.raises(UsageError, match="^invalid logging opts for driver none$"):
        parse_log_opts("none", ["max-size=1m"])


@pytest.mark.parametrize("driver, exc, message", [
    ("syslog", Unsupported, "log driver 'syslog' is not supported"),
    ("journald", Unsupported, "not supported"),
    ("bogus", UsageError, "^logger: no log driver named 'bogus' is registered$"),
])
def test_other_drivers(driver, exc, message):
    with pytest.raises(exc, match=message):
        parse_log_opts(driver, [])


@pytest.mark.parametrize("opts, message", [
    (["foo=bar"], "unknown log opt 'foo' for json-file log driver"),
    (["mode=fast"], "logger: logging mode not supported: fast"),
    (["max-buffer-size=4m"], "logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
    (["mode=non-blocking", "max-buffer-size=4x"], "error parsing option max-buffer-size: invalid suffix: 'x'"),
    (["max-size=0"], "failed to initialize logging driver: max-size must be a positive number"),
    (["max-size=0.5"], "failed to initialize logging driver: max-size must be a positive number"),
    (["max-size=-1"], "failed to initialize logging driver: invalid size: '-1'"),
    (["max-size"], "failed to initialize logging driver: invalid size: ''"),  # a bare key: empty value
    (["max-size=ten"], "failed to initialize logging driver: invalid size: 'ten'"),
    (["max-file=0", "max-size=1m"], "failed to initialize logging driver: max-file cannot be less than 1"),
    (["max-file=two"], 'failed to initialize logging driver: strconv.Atoi: parsing "two": invalid syntax'),
    (["max-file= 2"], 'failed to initialize logging driver: strconv.Atoi: parsing " 2": invalid syntax'),
    (["compress=yes"], 'failed to initialize logging driver: strconv.ParseBool: parsing "yes": invalid syntax'),
    (["compress=true"], "failed to initialize logging driver: compress cannot be true when max-file is less "
                        "than 2 or max-size is not set"),
    (["compress=1", "max-size=1m"], "compress cannot be true"),
    (["compress=T", "max-file=3"], "compress cannot be true"),
    (["labels-regex=("], "error parsing regexp in labels-regex"),
])
def test_dockerd_refusals(opts, message):
    with pytest.raises(UsageError) as e:
        parse_log_opts("json-file", opts)
    assert message in str(e.value)


def test_what_dockerd_accepts_is_accepted():
    log = parse_log_opts("json-file", ["mode=non-blocking", "max-buffer-size=4m", "labels=a,b", "env=X",
                                       "labels-regex=^com\\.", "env-regex=^APP_", "tag={{.Name}}/{{.ID}}",
                                       "compress=false"])
    assert log["mode"] == "non-blocking" and log["compress"] is False


def test_tag_templates_beyond_fields_are_refused_not_half_rendered():
    with pytest.raises(Unsupported, match="tag"):
        parse_log_opts("json-file", ["tag={{.Name | upper}}"])


@pytest.mark.parametrize("text, size", [
    ("10m", 10 ** 7), ("10MiB", 10 ** 7), ("10mb", 10 ** 7), ("1.5k", 1500), ("10 m", 10 ** 7),
    ("1e3", 1000), ("100", 100), ("1b", 1), ("2g", 2 * 10 ** 9), ("1P", 10 ** 15), ("1.1k", 1100),
])
def test_go_units_from_human_size_is_decimal(text, size):
    assert go_size(text) == size


def test_go_units_ram_in_bytes_is_binary():
    assert go_size("4m", binary=True) == 4 * 1024 ** 2
    assert go_size("1KiB", binary=True) == 1024


@pytest.mark.parametrize("text, message", [
    ("abc", "invalid size: 'abc'"), ("", "invalid size: ''"), ("1x", "invalid suffix: 'x'"),
    ("1kbb", "invalid suffix: 'kbb'"), ("1bb", "invalid suffix: 'bb'"), ("1kx", "invalid suffix: 'kx'"),
    ("1mebibytes", "invalid suffix: 'mebibytes'"),
    ("10  m", 'strconv.ParseFloat: parsing "10 ": invalid syntax'),
    ("1.2.3m", 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
    ("1e999", 'strconv.ParseFloat: parsing "1e999": value out of range'),
])
def test_go_units_errors(text, message):
    with pytest.raises(ValueError) as e:
        go_size(text)
    assert str(e.value) == message


def test_go_bool():
    assert [go_bool(v) for v in ("1", "t", "T", "true", "TRUE", "True")] == [True] * 6
    assert [go_bool(v) for v in ("0", "f", "F", "false", "FALSE", "False")] == [False] * 6
    with pytest.raises(ValueError):
        go_bool("tRUE")


def test_extra_attrs_from_labels_env_and_tag():
    record = {"id": "0123456789abcdef" * 4, "name": "web", "image": "busybox", "image_id": "sha256:" + "ab" * 32,
              "labels": {"com.example.team": "a", "tier": "front", "other": "x"}, "command": ["sh", "-c", "x"]}
    env = ["APP_MODE=prod", "PATH=/bin", "EMPTY=", "NOVALUE"]
    log = parse_log_opts("json-file", ["labels=tier,missing", "labels-regex=^com\\.", "env=PATH,NOVALUE,EMPTY",
                                       "env-regex=^APP_", "tag={{.Name}}/{{.ID}}/{{.ImageID}}"])
    assert extra_attrs(log, record, env) == {
        "tier": "front", "com.example.team": "a", "PATH": "/bin", "EMPTY": "", "APP_MODE": "prod",
        "tag": "web/0123456789ab/sha256:ababa"}  # Docker's ImageID: the first 12 characters, prefix included
    assert extra_attrs(parse_log_opts(None, []), record, env) == {}
    assert extra_attrs(None, record) == {}


def test_the_clis_default_log_is_what_parse_log_opts_gives():
    """cli.containers skips importing logopts when no log flag is given."""
    from rootless.cli.containers import DEFAULT_LOG
    assert parse_log_opts(None, []) == DEFAULT_LOG
