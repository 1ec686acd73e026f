"""rootless.cli.format: Docker-style templates, tables, JSON and times."""

import calendar
import json

import pytest

from rootless.cli.format import emit, human_duration, parse_time, render, since, table
from rootless.errors import UsageError

OBJ = {"ID": "0123456789ab", "Repository": "busybox", "Tag": "latest",
       "Labels": {"k": "v", "a": "b"}, "Tags": ["1", "latest"],
       "Config": {"Cmd": ["sh", "-c"], "User": "root", "Env": None}, "Flag": True, "Size": 42}


@pytest.mark.parametrize("template, out", [
    ("{{.ID}}", "0123456789ab"),
    ("{{ .ID }}", "0123456789ab"),
    ("id={{.ID}} tag={{.Tag}}\n", "id=0123456789ab tag=latest\n"),
    ("plain text", "plain text"),
    ("{{.Config.User}}", "root"),
    ("{{.Config.Cmd}}", "[sh -c]"),
    ("{{.Config.Env}}", "<no value>"),
    ("{{.Labels}}", "map[a:b k:v]"),
    ("{{.Flag}}", "true"),
    ("{{.Size}}", "42"),
    ('{{join .Tags ","}}', "1,latest"),
    ('{{join .Config.Cmd ", "}}', "sh, -c"),
    ('{{join .Config.Env ","}}', ""),
    ('{{index .Labels "k"}}', "v"),
    ('{{index .Labels "missing"}}', ""),
    ("{{upper .Repository}}", "BUSYBOX"),
    ("{{lower .Config.User}}", "root"),
    ("{{}}", ""),
])
def test_render(template, out):
    assert render(template, OBJ) == out


def test_render_json():
    assert json.loads(render("{{json .}}", OBJ)) == OBJ
    assert render("{{json .Tags}}", OBJ) == '["1","latest"]'
    assert render("{{json .Config}}", OBJ) == '{"Cmd":["sh","-c"],"User":"root","Env":null}'
    assert render("{{json .ID}}", OBJ) == '"0123456789ab"'
    assert "\n" not in render("{{json .}}", OBJ)


@pytest.mark.parametrize("template", ["{{.Nope}}", "{{.Config.Nope}}", "{{.ID.More}}", "{{json .Nope}}",
                                      '{{join .Nope ","}}'])
def test_render_unknown_field_strict(template):
    with pytest.raises(UsageError):
        render(template, OBJ, strict=True)


@pytest.mark.parametrize("template, out", [
    ("{{.Nope}}", "<no value>"), ("{{.Config.Nope}}", "<no value>"), ("{{json .Nope}}", "null"),
    ('{{join .Nope ","}}', ""),
])
def test_render_missing_key_is_no_value_by_default(template, out):
    # render() is for inspected JSON, where Go's maps print a missing key as <no value>
    assert render(template, OBJ) == out
    with pytest.raises(UsageError):
        render("{{.ID.More}}", OBJ)  # a field of a string is an error either way


@pytest.mark.parametrize("template, out", [
    # refused by the regex engine this replaced; Go's text/template renders them
    ("{{if .Flag}}yes{{end}}", "yes"), ("{{range .Tags}}{{.}}{{end}}", "1latest"),
    ('{{printf "%s" .ID}}', "0123456789ab"), ("{{len .Tags}}", "2"), ("{{.ID | upper}}", "0123456789AB"),
])
def test_render_go_actions(template, out):
    assert render(template, OBJ) == out


@pytest.mark.parametrize("template", ["{{json .ID .Tag}}", "{{upper}}", "{{join .Tags}}"])
def test_render_wrong_number_of_arguments(template):
    with pytest.raises(UsageError, match="wrong number of args"):
        render(template, OBJ)


ROWS = [
    {"Repository": "docker.io/library/busybox", "Tag": "1.36.1-glibc", "ID": "0123456789ab", "Size": "4.26MB"},
    {"Repository": "localhost:5000/app", "Tag": "development", "ID": "ba9876543210", "Size": "117MB"},
]
COLUMNS = [("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"), ("SIZE", "Size")]


def test_default_table_is_aligned_with_three_spaces():
    assert emit(ROWS, None, COLUMNS).split("\n") == [
        "REPOSITORY                  TAG            IMAGE ID       SIZE",
        "docker.io/library/busybox   1.36.1-glibc   0123456789ab   4.26MB",
        "localhost:5000/app          development    ba9876543210   117MB",
    ]
    assert emit(ROWS, "table", COLUMNS) == emit(ROWS, None, COLUMNS)


def test_table_columns_are_at_least_ten_wide_like_docker():
    # docker/cli formatter: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0): minwidth 10, padding 3.
    rows = [{"Tag": "latest", "ID": "abc", "Size": "1MB"}]
    cols = [("TAG", "Tag"), ("ID", "ID"), ("SIZE", "Size")]
    assert emit(rows, None, cols).split("\n") == [
        "TAG       ID        SIZE",
        "latest    abc       1MB",
    ]


def test_table_of_nothing_is_the_header():
    out = emit([], None, COLUMNS)
    assert "\n" not in out
    assert out.startswith("REPOSITORY   TAG ") and out.endswith(" IMAGE ID   SIZE")
    assert out.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "SIZE"]


def test_table_function_pads_all_but_the_last_column():
    out = table([["aaaaaaaaaa", "b", "c"], ["d", "eeeeeeeeeeee", "f"]])
    assert out.split("\n") == ["aaaaaaaaaa   b              c", "d            eeeeeeeeeeee   f"]
    assert table([]) == ""


@pytest.mark.parametrize("fmt", ["table {{.ID}}\t{{.Repository}}", "table {{.ID}}\\t{{.Repository}}"])
def test_table_template_headers(fmt):
    out = emit(ROWS, fmt, COLUMNS)
    assert out.split("\n") == [
        "IMAGE ID       REPOSITORY",
        "0123456789ab   docker.io/library/busybox",
        "ba9876543210   localhost:5000/app",
    ]


def test_table_template_header_for_a_field_without_a_column():
    rows = [{"ID": "0123456789ab", "Containers": "N/A", "CreatedSince": "2 days ago"}]
    out = emit(rows, "table {{.ID}}\\t{{.Containers}}", [("IMAGE ID", "ID")])
    assert out.split("\n") == ["IMAGE ID       CONTAINERS", "0123456789ab   N/A"]
    out = emit(rows, "table {{.CreatedSince}}", [("IMAGE ID", "ID")])
    assert out.split("\n") == ["CREATED SINCE", "2 days ago"]


def test_custom_template_one_line_per_object():
    assert emit(ROWS, "{{.ID}}: {{.Repository}}:{{.Tag}}", COLUMNS) == (
        "0123456789ab: docker.io/library/busybox:1.36.1-glibc\n"
        "ba9876543210: localhost:5000/app:development")
    assert emit(ROWS, "{{.ID}}\\t{{.Tag}}", COLUMNS).split("\n")[0] == "0123456789ab\t1.36.1-glibc"


def test_json_one_object_per_line():
    lines = emit(ROWS, "json", COLUMNS).split("\n")
    assert len(lines) == 2
    assert [json.loads(l) for l in lines] == ROWS


def test_quiet_prints_the_quiet_field():
    assert emit(ROWS, "{{.Repository}}", COLUMNS, quiet_field="ID", quiet=True) == "0123456789ab\nba9876543210"
    assert emit([], None, COLUMNS, quiet_field="ID", quiet=True) == ""


def test_emit_unknown_field_in_template():
    with pytest.raises(UsageError):
        emit(ROWS, "{{.Nope}}", COLUMNS)


@pytest.mark.parametrize("seconds, text", [
    (0, "Less than a second"),
    (0.999, "Less than a second"),
    (-5, "Less than a second"),
    (1, "1 second"),
    (1.5, "1 second"),
    (5, "5 seconds"),
    (59, "59 seconds"),
    (60, "About a minute"),
    (119, "About a minute"),
    (120, "2 minutes"),
    (180, "3 minutes"),
    (3599, "59 minutes"),
    (3600, "About an hour"),
    (5 * 3600, "5 hours"),
    (47 * 3600, "47 hours"),
    (48 * 3600, "2 days"),
    (3 * 86400, "3 days"),
    (13 * 86400, "13 days"),
    (14 * 86400, "2 weeks"),
    (59 * 86400, "8 weeks"),
    (60 * 86400, "2 months"),
    (90 * 86400, "3 months"),
    (729 * 86400, "24 months"),
    (2 * 365 * 86400, "2 years"),
    (10 * 365 * 86400, "10 years"),
])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize("seconds, text", [
    (89 * 60, "About an hour"),          # 1.48 h rounds to 1
    (90 * 60, "2 hours"),                # 1.5 h rounds to 2
    (119 * 60, "2 hours"),
    (int(47.5 * 3600), "2 days"),        # rounds to 48 hours
    (int(13.99 * 86400), "2 weeks"),     # 335.76 h rounds to 336
])
def test_human_duration_rounds_hours_like_go_units(seconds, text):
    # go-units HumanDuration: hours := int(d.Hours() + 0.5)
    assert human_duration(seconds) == text


def test_parse_time():
    base = calendar.timegm((2024, 1, 2, 3, 4, 5, 0, 0, 0))
    assert parse_time("2024-01-02T03:04:05Z") == base
    assert parse_time("2024-01-02T03:04:05") == base
    assert parse_time("2024-01-02T03:04:05.5Z") == base + 0.5
    assert abs(parse_time("2024-01-02T03:04:05.123456789Z") - (base + 0.123456789)) < 1e-6
    assert parse_time("2024-01-02T03:04:05+02:00") == base - 7200
    assert parse_time("2024-01-02T03:04:05.25+02:00") == base - 7200 + 0.25
    assert parse_time("2024-01-02T03:04:05-05:30") == base + 5 * 3600 + 30 * 60
    assert parse_time("2024-01-02T03:04:05+00:00") == base


@pytest.mark.parametrize("text", ["", None, "yesterday", "2024-01-02", "02/01/2024 03:04:05"])
def test_parse_time_invalid(text):
    assert parse_time(text) is None


def test_since():
    base = calendar.timegm((2024, 1, 2, 3, 4, 5, 0, 0, 0))
    assert since("2024-01-02T03:04:05Z", now=base + 300) == "5 minutes ago"
    assert since("2024-01-02T05:04:05+02:00", now=base + 3 * 86400) == "3 days ago"
    assert since("not a time", now=base) == "N/A"
