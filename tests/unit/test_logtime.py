"""rootless.runtime.logtime: --since/--until as the docker CLI and dockerd read them.

The expected values follow Docker's api/types/time (GetTimestamp, ParseTimestamps) and
Go's time.ParseDuration and time.Parse, worked out by hand from their rules.
"""

import calendar

import pytest

from rootless.errors import UsageError
from rootless.runtime.logtime import (cli_stamp, days_from_civil, fixed_nano, get_timestamp, go_duration,
                                      line_time_ns, parse_timestamps, window)

NOW = 1700000000 * 10 ** 9 + 500000000  # 2023-11-14T22:13:20.5Z
H = 3600 * 10 ** 9


@pytest.mark.parametrize("text, ns", [
    ("10m", 600 * 10 ** 9), ("1h30m", 90 * 60 * 10 ** 9), ("1.5h", 90 * 60 * 10 ** 9),
    ("-5s", -5 * 10 ** 9), ("+2s", 2 * 10 ** 9), ("300ms", 300 * 10 ** 6), ("1us", 1000),
    ("1\u00b5s", 1000), ("1\u03bcs", 1000), ("7ns", 7), (".5s", 5 * 10 ** 8), ("5.s", 5 * 10 ** 9),
    ("0", 0), ("-0", 0), ("1h0.5m", H + 30 * 10 ** 9),
    ("1", None), ("", None), ("10x", None), ("h", None), (".s", None), ("1.5", None),
    ("3000000h", None),  # past int64 nanoseconds
])
def test_go_durations(text, ns):
    assert go_duration(text) == ns


@pytest.mark.parametrize("value, stamp", [
    ("10m", "1699999400"),                    # now - 10m, cut to whole seconds
    ("0s", "1700000000"),
    ("-1h", "1700003600"),
    ("0", "0"),                               # not a duration: Unix seconds 0
    ("1700000000", "1700000000"),             # Unix seconds are passed on as written
    ("1700000000.25", "1700000000.25"),
    ("+5", "+5"),
    ("2013-01-02T13:23:37Z", "1357133017.000000000"),
    ("2013-01-02T13:23:37.123456789123Z", "1357133017.123456789"),  # digits past 9 dropped
    ("2013-01-02T13:23:37,5Z", "1357133017.500000000"),             # Go takes a comma too
    ("2013-01-02T13:23:37+01:00", "1357129417.000000000"),
    ("2013-01-02T13:23:37-01:30", "1357138417.000000000"),
    ("2013-01-02T13+01:00", "1357128000.000000000"),
    ("2013-01-02T3:23:37Z", "1357097017.000000000"),               # the hour may have one digit
    ("2013-01-02Z", "1357084800.000000000"),
    # In the local zone (+01:00 here, the offset it has now):
    ("2013-01-02T13:23:37", "1357129417.000000000"),
    ("2013-01-02T13:23:37.5", "1357129417.500000000"),
    ("2013-01-02T13:23", "1357129380.000000000"),
    ("2013-01-02T13", "1357128000.000000000"),
    ("2013-01-02", "1357081200.000000000"),
])
def test_get_timestamp(value, stamp):
    assert get_timestamp(value, NOW, 3600) == stamp


@pytest.mark.parametrize("value, message", [
    ("abc", 'failed to parse value as time or duration: "abc"'),
    ("1.", 'failed to parse value as time or duration: "1."'),
    ("1e3", 'failed to parse value as time or duration: "1e3"'),
    ("10mm", 'failed to parse value as time or duration: "10mm"'),
    ("2013-13-02", 'parsing time "2013-13-02": month out of range'),
    ("2013-02-29", 'parsing time "2013-02-29": day out of range'),
    ("2013-01-02T24:00:00Z", 'parsing time "2013-01-02T24:00:00Z": hour out of range'),
    ("2013-01-02T13:60:00Z", 'parsing time "2013-01-02T13:60:00Z": minute out of range'),
    ("2013-01-02x", 'parsing time "2013-01-02x": extra text: "x"'),
    ("2013-1-02", 'parsing time "2013-1-02" as "2006-01-02": cannot parse "1-02" as "01"'),
    ("2013-01-02 13:23:37Z", 'parsing time "2013-01-02 13:23:37Z" as "2006-01-02Z07:00": cannot parse " 13:23:37Z" as "Z07:00"'),
])
def test_get_timestamp_errors_are_go_s(value, message):
    with pytest.raises(ValueError) as e:
        get_timestamp(value, NOW, 0)
    assert str(e.value) == message


def test_leap_day_exists_in_leap_years():
    assert get_timestamp("2012-02-29", NOW, 0) == "%d.000000000" % calendar.timegm((2012, 2, 29, 0, 0, 0))
    assert get_timestamp("2000-02-29Z", NOW, 0) == "%d.000000000" % calendar.timegm((2000, 2, 29, 0, 0, 0))


def test_parse_timestamps_as_dockerd():
    assert parse_timestamps("1700000000") == 1700000000 * 10 ** 9
    assert parse_timestamps("1700000000.000000001") == 1700000000 * 10 ** 9 + 1
    assert parse_timestamps("1.5") == 1500000000
    assert parse_timestamps("1.1234567891") == 1123456789  # past nine digits: cut
    assert parse_timestamps("-6.999999999") == -5000000001


def test_cli_errors_say_which_flag():
    with pytest.raises(UsageError) as e:
        cli_stamp("yesterday", "since", NOW, 0)
    assert str(e.value) == 'invalid value for "since": failed to parse value as time or duration: "yesterday"'


def test_window_until_0_is_unbounded_since_0_is_the_epoch():
    assert window("", "", NOW, 0) == (None, None)
    assert window("0", "0", NOW, 0) == (0, None)
    assert window("10m", "1700000000.5", NOW, 0) == (1699999400 * 10 ** 9, NOW)
    with pytest.raises(UsageError, match='"until"'):
        window("", "soon", NOW, 0)


def test_days_from_civil_matches_the_calendar():
    for date in ((1970, 1, 1), (1969, 12, 31), (2000, 2, 29), (2026, 12, 2), (1600, 3, 1), (9999, 12, 31)):
        assert days_from_civil(*date) * 86400 == calendar.timegm(date + (0, 0, 0))


def test_line_times():
    assert line_time_ns("2026-12-02T01:52:24.12345678Z") == calendar.timegm((2026, 12, 2, 1, 52, 24)) * 10 ** 9 + 123456780
    assert line_time_ns("1970-01-01T01:00:00+01:00") == 0
    assert line_time_ns("1970-01-01T00:00:00.5-00:30") == 1800 * 10 ** 9 + 5 * 10 ** 8
    assert line_time_ns("yesterday") is None


@pytest.mark.parametrize("text, shown", [
    ("2026-12-02T01:52:24.123456789Z", "2026-12-02T01:52:24.123456789Z"),
    ("2026-12-02T01:52:24.12Z", "2026-12-02T01:52:24.120000000Z"),
    ("2026-12-02T01:52:24Z", "2026-12-02T01:52:24.000000000Z"),
    ("2026-12-02T01:52:24.5+00:00", "2026-12-02T01:52:24.500000000Z"),
    ("2026-12-02T01:52:24-05:30", "2026-12-02T01:52:24.000000000-05:30"),
])
def test_timestamps_are_shown_with_nine_digits(text, shown):
    assert fixed_nano(text) == shown
