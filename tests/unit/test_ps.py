"""ps, rename and container prune: the pure parts (status texts, filters, rows, formats)."""

import json
import os
import time

import pytest

from rootless import filters
from rootless.cli import format as fmt
from rootless.cli.ps import (COLUMNS, HEADERS, container_row, image_column, refreshed_image,
                             size_text)
from rootless.errors import Conflict, NotFound, Unsupported, UsageError
from rootless.fsutil import apparent_size
from rootless.runtime import listing, prune, rename, status
from rootless.units import human_size

NOW = 1_800_000_000.0


def rec(name, created, state="exited", **kw):
    """A container record as runtime.state writes it (ids: the name's hex, padded)."""
    r = {"id": (name.encode().hex() + "0" * 64)[:64], "name": name, "created": NOW - created,
         "image": "busybox", "image_id": "sha256:" + "b" * 64, "command": ["sh"], "labels": {},
         "status": state, "started": None, "finished": None, "exit_code": None}
    if state != "created":
        r.update(started=NOW - created + 1, finished=None if state in status.ALIVE else NOW - 5, exit_code=0)
    r.update(kw)
    return r


# -- status texts --------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, state, text", [
    ({"status": "created"}, "created", "Created"),
    ({"status": "running", "started": NOW - 3}, "running", "Up 3 seconds"),
    ({"status": "running", "started": NOW - 0.4}, "running", "Up Less than a second"),
    ({"status": "running", "started": NOW - 60}, "running", "Up About a minute"),
    ({"status": "paused", "started": NOW - 150}, "paused", "Up 2 minutes (Paused)"),
    ({"status": "restarting", "started": NOW - 60, "finished": NOW - 5, "exit_code": 1}, "restarting",
     "Restarting (1) 5 seconds ago"),
    ({"status": "removing", "started": NOW - 9}, "removing", "Removal In Progress"),
    ({"status": "dead", "started": NOW - 9}, "dead", "Dead"),
    ({"status": "exited", "started": NOW - 300, "finished": NOW - 120, "exit_code": 0}, "exited",
     "Exited (0) 2 minutes ago"),
    ({"status": "exited", "started": NOW - 9000, "finished": NOW - 3600, "exit_code": 137}, "exited",
     "Exited (137) About an hour ago"),
    ({"status": "exited", "started": None, "finished": NOW}, "created", "Created"),  # never ran
    ({"status": "exited", "started": NOW - 9, "finished": None}, "exited", ""),
])
def test_state_and_status_text_are_dockers(fields, state, text):
    r = dict({"started": None, "finished": None, "exit_code": None}, **fields)
    assert status.state_string(r) == state
    assert status.status_text(r, NOW) == text


def test_paused_and_restarting_count_as_running():
    assert [s for s in status.STATES if status.is_running({"status": s})] == ["running", "paused", "restarting"]


@pytest.mark.parametrize("argv, text", [
    (["sh"], "sh"), (["sleep", "100"], "sleep 100"), ([], ""), (None, ""),
    (["sh", "-c", "echo hi; exit 3"], "sh -c 'echo hi; exit 3'"),
    (["/my prog", "a b", "c"], "/my prog 'a b' c"),  # Docker quotes arguments, never the program
])
def test_command_text(argv, text):
    assert status.command_text(argv) == text


# -- rows -----------------------------------------------------------------------------------------

def test_row_fields_as_docker_prints_them():
    r = rec("web", 7200, command=["sh", "-c", "while true; do sleep 1; done"], labels={"team": "hpc", "a": "1"})
    row = container_row(r, NOW, size=(12, 4_260_000))
    assert row["ID"] == r["id"][:12] and row["Names"] == "web"
    assert row["Command"] == '"sh -c \'while true; …"'  # 19 characters and the ellipsis, then quoted
    assert row["RunningFor"] == "2 hours ago" and row["Status"] == "Exited (0) 5 seconds ago"
    assert row["Labels"] == "a=1,team=hpc" and row["Label"]("team") == "hpc" and row["Label"]("x") == ""
    assert row["Size"] == "12B (virtual 4.26MB)" and row["Ports"] == "" and row["State"] == "exited"
    assert row["CreatedAt"] == time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(int(NOW - 7200)))
    full = container_row(r, NOW, trunc=False)
    assert full["ID"] == r["id"] and full["Command"] == '"sh -c \'while true; do sleep 1; done\'"'
    assert full["Size"] == "0B"  # not measured without -s


def test_created_at_is_gos_time_string():
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        assert fmt.go_time(1796176344.7) == "2026-12-02 01:52:24 +0000 UTC"
    finally:
        del os.environ["TZ"]
        time.tzset()


def test_row_json_keys_are_dockers():
    line = fmt.emit([container_row(rec("web", 5), NOW)], "json", [])
    assert list(json.loads(line)) == ["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts",
                                      "Names", "Networks", "Platform", "Ports", "RunningFor", "Size", "State",
                                      "Status"]


@pytest.mark.parametrize("image, trunc, shown", [
    ("busybox", True, "busybox"),
    ("busybox:latest", True, "busybox:latest"),
    ("docker.io/library/busybox:1.36", True, "busybox:1.36"),
    ("localhost:5000/app@sha256:" + "c" * 64, True, "localhost:5000/app"),
    ("localhost:5000/app:v1@sha256:" + "c" * 64, True, "localhost:5000/app:v1"),
    ("sha256:" + "b" * 64, True, "b" * 12),
    ("bbbbbbbbbbbb", True, "b" * 12),
    ("docker.io/library/busybox:1.36", False, "docker.io/library/busybox:1.36"),
    ("", True, "<no image>"),
    ("Not/A Reference", True, "Not/A Reference"),
])
def test_image_column(image, trunc, shown):
    assert image_column(image, "sha256:" + "b" * 64, trunc) == shown


def test_image_becomes_the_id_once_its_name_moved_on():
    r = rec("web", 5)
    assert refreshed_image(r, lambda name: r["image_id"]) == "busybox"
    assert refreshed_image(r, lambda name: "sha256:" + "d" * 64) == r["image_id"]  # retagged
    assert refreshed_image(r, lambda name: None) == r["image_id"]                   # removed


def test_size_text():
    assert size_text(None) == "0B"
    assert size_text((0, 0)) == "0B"
    assert size_text((12, 4_260_123)) == "12B (virtual 4.26MB)"
    assert size_text((1_234_567, 1_234_567 + 5_000_000)) == "1.23MB (virtual 6.23MB)"
    assert human_size(1_234_567, precision=4) == "1.235MB"  # prune's HumanSize


def test_headers_cover_every_field():
    assert set(HEADERS) == set(container_row(rec("a", 1), NOW)) - {"Label"}
    assert [h for h, _ in COLUMNS] == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]


# -- templates ------------------------------------------------------------------------------------

def test_table_templates_with_labels_and_headers():
    rows = [container_row(rec("web", 5, labels={"com.example.my-team": "hpc"}), NOW)]
    out = fmt.emit(rows, 'table {{.Names}}\\t{{.Label "com.example.my-team"}}\\t{{upper .State}}\\t{{.CreatedAt}}',
                   [(h, f) for f, h in HEADERS.items()])
    header, line = out.split("\n")
    assert header == "NAMES     my team   STATE     CREATED AT"  # Docker's header for .Label: the last part
    assert line.startswith("web       hpc       EXITED    ")


def test_default_table_has_an_empty_ports_column():
    out = fmt.emit([container_row(rec("web", 5), NOW)], None, COLUMNS).split("\n")
    assert out[0].index("PORTS") + 10 == out[0].index("NAMES")
    assert out[1][out[0].index("PORTS"):].startswith(" " * 10 + "web")


@pytest.mark.parametrize("template, text", [
    ('{{.Label "team"}}', "hpc"),
    ('{{.Labels}}', "team=hpc"),
    ('{{json .Labels}}', '"team=hpc"'),
    ('{{pad .Names 1 2}}|', " web  |"),
    ('{{truncate .Names 2}}', "we"),
    ('{{split .Labels "="}}', "[team hpc]"),
    ('a  {{- .Names -}}  b', "awebb"),
    ('{{"lit"}}', "lit"),
])
def test_template_actions(template, text):
    assert fmt.render(template, container_row(rec("web", 5, labels={"team": "hpc"}), NOW)) == text


@pytest.mark.parametrize("template", ["{{.Nope}}", '{{.Names "x"}}', '{{.Label}}', '{{.Label "a" "b"}}'])
def test_bad_templates_fail_even_with_nothing_to_list(template):
    with pytest.raises(UsageError):
        fmt.check(template, container_row(rec("web", 5), NOW))


def test_check_leaves_table_and_json_alone():
    for good in (None, "", "table", "json", "table {{.ID}}", "{{.ID}}"):
        fmt.check(good, container_row(rec("web", 5), NOW))


@pytest.mark.parametrize("text, width, out", [
    ("short", 20, "short"), ("12345678901234567890", 20, "12345678901234567890"),
    ("123456789012345678901", 20, "1234567890123456789…"), ("日本語日本語日本語日本語", 20, "日本語日本語日本語…"),
    ("abc", 0, ""),
])
def test_ellipsis(text, width, out):
    assert fmt.ellipsis(text, width) == out


def test_go_quote():
    assert fmt.go_quote('sh -c "x"\\') == '"sh -c \\"x\\"\\\\"'
    assert fmt.go_quote("a\tb\nc\x01\x7fé…\u200b") == '"a\\tb\\nc\\x01\\x7fé…\\u200b"'


# -- filters: parsing and matching ------------------------------------------------------------------

def test_filter_arguments_parse_as_dockers():
    assert filters.parse(["Status=exited", " label = a=b ", "status=exited", "", "label=c"]) == \
        {"status": ["exited"], "label": ["a=b", "c"]}
    with pytest.raises(UsageError, match=r'invalid argument "foo" for "-f, --filter" flag: bad format of filter '
                                         r'\(expected name=value\)'):
        filters.parse(["foo"])
    with pytest.raises(UsageError, match="invalid filter 'bogus'"):
        filters.validate({"bogus": ["1"]}, ["name"])


def test_match_is_exact_or_a_regular_expression():
    assert filters.match(None, "x") and filters.match([], "x")
    assert filters.match(["web"], "my-web-1") and filters.match(["^web$"], "web")
    assert not filters.match(["^web$"], "web2") and not filters.match(["[bad"], "[bad-x")
    assert filters.match(["[bad"], "[bad")  # an exact value needs no valid expression
    assert filters.match_labels(["a", "b=2"], {"a": "", "b": "2"})
    assert not filters.match_labels(["a", "b=2"], {"a": ""}) and not filters.match_labels(["b=2"], {"b": "3"})
    assert not filters.match_labels(["a"], None) and filters.match_labels([], None)


@pytest.mark.parametrize("text, seconds", [
    ("10m", 600), ("1h30m", 5400), ("1.5h", 5400), ("90s", 90), ("300ms", 0.3), ("-1h", -3600), ("2h45m10s", 9910),
])
def test_go_durations(text, seconds):
    assert filters.go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "1d", "h", "1h 30m", "abc"])
def test_not_go_durations(text):
    assert filters.go_duration(text) is None


def test_timestamps_as_docker_reads_them():
    assert filters.timestamp("10m", NOW) == NOW - 600
    assert filters.timestamp("2026-01-02T03:04:05Z", NOW) == 1767323045
    assert filters.timestamp("2026-01-02T03:04:05.25+01:00", NOW) == 1767323045.25 - 3600
    assert filters.timestamp("2026-01-02T03:04-02:00", NOW) == 1767323040 + 7200
    assert filters.timestamp("1767323045", NOW) == 1767323045
    assert filters.timestamp("1767323045.5", NOW) == 1767323045.5
    assert filters.timestamp("0", NOW) == 0
    local = filters.timestamp("2026-01-02", NOW)
    assert local == 1767312000 - time.localtime(NOW).tm_gmtoff  # no zone: the local one
    for bad, message in (("2026-02-30", "out of range"), ("2026-13-01T00:00:00Z", "out of range"),
                         ("yesterday", "failed to parse value as time or duration"), ("2026-01", "invalid timestamp")):
        with pytest.raises(UsageError, match=message):
            filters.timestamp(bad, NOW)


# -- which containers ps lists ---------------------------------------------------------------------

def world():
    """Oldest first: a created one, two exited (0 and 3), a running, a paused, a dead one."""
    return [
        rec("made", 600, "created", labels={"tier": "db"}),
        rec("ok", 500, exit_code=0, labels={"tier": "web", "env": "prod"}),
        rec("failed", 400, exit_code=3, labels={"tier": "web"}, image="other:1", image_id="sha256:" + "c" * 64),
        rec("web-1", 300, "running"),
        rec("held", 200, "paused"),
        rec("gone", 100, "dead", exit_code=1),
    ]


def names(records, filter_args=(), **kw):
    return [r["name"] for r in listing.select(world() if records is None else records, filters.parse(filter_args),
                                              **kw)]


def test_default_lists_what_runs_newest_first():
    assert names(None) == ["held", "web-1"]
    assert names(None, all=True) == ["gone", "held", "web-1", "failed", "ok", "made"]


def test_last_and_latest_include_every_state():
    assert names(None, limit=1) == ["gone"]
    assert names(None, limit=3) == ["gone", "held", "web-1"]
    assert names(None, ["status=exited"], limit=1) == ["failed"]


@pytest.mark.parametrize("args, shown", [
    (["name=web"], ["web-1"]),
    (["name=^/held$"], ["held"]),
    (["name=^o", "name=^f"], ["failed", "ok"]),          # repeated keys OR
    (["label=tier"], ["failed", "ok", "made"]),
    (["label=tier=web"], ["failed", "ok"]),
    (["label=tier=web", "label=env"], ["ok"]),          # label values AND, as Docker's
    (["exited=3"], ["failed"]),
    (["exited=0", "exited=3"], ["failed", "ok"]),
    (["exited=1"], ["gone"]),                           # a dead container has an exit code too
    (["status=created"], ["made"]),
    (["status=paused", "status=dead"], ["gone", "held"]),
    (["status=exited", "label=tier=web"], ["failed", "ok"]),  # different keys AND
    (["ancestor=busybox"], ["gone", "held", "web-1", "ok", "made"]),
    (["ancestor=other:1"], ["failed"]),
    (["ancestor=ccccccc"], ["failed"]),                  # an ID prefix of an image no longer stored
    (["before=web-1"], ["failed", "ok", "made"]),
    (["since=failed"], ["gone", "held", "web-1"]),
    (["since=made", "before=held"], ["web-1", "failed", "ok"]),
])
def test_filters_select_as_dockers(args, shown):
    assert names(None, args, all=True) == shown


def test_ancestor_uses_the_image_store_first():
    by_store = {"busybox:latest": "sha256:" + "c" * 64}
    selected = listing.select(world(), {"ancestor": ["busybox:latest"]}, all=True, image_id_of=by_store.get)
    assert [r["name"] for r in selected] == ["failed"]  # the tag names that image now


def test_id_filter_is_a_unique_prefix():
    recs = world()
    by_name = {r["name"]: r["id"] for r in recs}
    assert names(recs, ["id=" + by_name["ok"][:6]], all=True) == ["ok"]
    assert names(recs, ["id=" + by_name["ok"], "id=" + by_name["held"][:4]], all=True) == ["held", "ok"]
    assert names(recs, ["id=" + by_name["ok"][3:10]], all=True) == []   # not a prefix
    ambiguous = [rec("aa", 2, id="ab" + "0" * 62), rec("ab", 1, id="ab" + "1" * 62)]
    assert names(ambiguous, ["id=ab"], all=True) == []
    assert names(ambiguous, ["id=ab1"], all=True) == ["ab"]


def test_status_filter_implies_all_and_exited_needs_all():
    assert names(None, ["status=exited"]) == ["failed", "ok"]
    assert names(None, ["exited=0"]) == []  # as Docker: docker ps -a --filter exited=0


def test_before_and_since_need_a_container():
    with pytest.raises(NotFound, match="No such container: nope"):
        names(None, ["before=nope"])


@pytest.mark.parametrize("args, error, message", [
    (["status=up"], UsageError, "invalid filter 'status=up': invalid value for state \\(up\\): must be one of "
                                "created, running, paused, restarting, removing, exited, dead"),
    (["exited=x"], UsageError, "invalid filter 'exited=x': strconv.Atoi: parsing \"x\": invalid syntax"),
    (["colour=red"], UsageError, "invalid filter 'colour'"),
    (["network=bridge"], Unsupported, "'network' filter is not supported yet"),
    (["volume=data"], Unsupported, "no volumes yet"),
    (["publish=8080:80"], UsageError, "filter for 'publish' should not contain ':': 8080:80"),
    (["expose=x"], UsageError, "error while looking up for expose x"),
    (["publish=90-80"], UsageError, "error while looking up for publish 90-80"),
    (["health=healthy"], Unsupported, "not supported yet"),
    (["isolation=default"], Unsupported, "not supported yet"),
    (["is-task=true"], Unsupported, "not supported yet"),
])
def test_filter_errors(args, error, message):
    with pytest.raises(error, match=message):
        names(None, args)


def test_publish_and_expose_filters_read_what_create_kept():
    web = rec("web", 30, "running", host_config={"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                                                  "53/udp": [{"HostIp": "", "HostPort": ""}]}},
              config={"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "443/tcp": {}}})
    db = rec("db", 20, config={"ExposedPorts": {"5432/tcp": {}}})
    bare = rec("bare", 10)
    everyone = [web, db, bare]
    assert names(everyone, ["publish=80"], all=True) == ["web"]
    assert names(everyone, ["publish=80/tcp"], all=True) == ["web"]
    assert names(everyone, ["publish=53"], all=True) == []  # 53/tcp: not asked
    assert names(everyone, ["publish=50-60/udp"], all=True) == ["web"]
    assert names(everyone, ["publish=443"], all=True) == []  # exposed, not published
    assert names(everyone, ["expose=443"], all=True) == ["web"]
    assert names(everyone, ["expose=5432", "expose=443"], all=True) == ["db", "web"]  # repeated: OR
    assert names(everyone, ["expose=5432", "publish=80"], all=True) == []  # different keys: AND


def test_ports_column_only_while_running():
    from rootless.cli.ps import ports_column
    bound = [["", 8080, 80, "tcp"], ["127.0.0.1", 5353, 53, "udp"]]
    assert ports_column(rec("a", 9, "running", ports=bound)) == "127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp"
    assert ports_column(rec("a", 9, "exited", ports=bound)) == ""
    assert ports_column(rec("a", 9, "created")) == ""
    exposed = {"config": {"ExposedPorts": {"80/tcp": {}, "443/tcp": {}}}}
    assert ports_column(rec("a", 9, "running", ports=bound[:1], network="none", **exposed)) == \
        "443/tcp, 0.0.0.0:8080->80/tcp"
    assert ports_column(rec("a", 9, "running", network="host", **exposed)) == ""  # the host's network
    assert container_row(rec("a", 9, "running", ports=bound[:1]), NOW)["Ports"] == "0.0.0.0:8080->80/tcp"


# -- rename -----------------------------------------------------------------------------------------

def test_rename_checks_as_docker():
    recs = world()
    ok = recs[1]
    assert rename.check_new_name(recs, ok, "fine.name_2-x") == "fine.name_2-x"
    assert rename.check_new_name(recs, ok, "/slashed") == "slashed"
    with pytest.raises(UsageError, match="^Renaming a container with the same name as its current name$"):
        rename.check_new_name(recs, ok, "ok")
    with pytest.raises(UsageError, match=r"Invalid container name \(/bad!\), only \[a-zA-Z0-9\]\[a-zA-Z0-9_.-\] are"):
        rename.check_new_name(recs, ok, "bad!")
    with pytest.raises(UsageError, match="Invalid container name"):
        rename.check_new_name(recs, ok, "x")  # Docker's pattern needs two characters
    with pytest.raises(Conflict, match='The container name "/held" is already in use by container "%s"'
                       % recs[4]["id"]):
        rename.check_new_name(recs, ok, "held")


# -- container prune --------------------------------------------------------------------------------

def test_prune_takes_what_does_not_run():
    assert [r["name"] for r in prune.prunable(world(), {}, NOW)] == ["made", "ok", "failed", "gone"]
    removing = rec("leaving", 5, "removing")
    assert prune.prunable([removing], {}, NOW) == []


def test_prune_filters():
    def chosen(*args):
        return [r["name"] for r in prune.prunable(world(), filters.parse(args, "--filter"), NOW)]
    assert chosen("until=450s") == ["made", "ok"]  # created more than 450 s ago
    assert chosen("label=tier=web") == ["ok", "failed"]
    assert chosen("label!=tier=web") == ["made", "gone"]
    assert chosen("label=tier", "label!=env") == ["made", "failed"]
    with pytest.raises(UsageError, match="invalid filter 'status'"):
        chosen("status=exited")
    with pytest.raises(UsageError, match="more than one until filter specified"):
        chosen("until=1h", "until=2h")


# -- sizes ------------------------------------------------------------------------------------------

def test_apparent_size_counts_files_once(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x" * 10)
    os.link(tmp_path / "d" / "a", tmp_path / "hard")
    (tmp_path / "b").write_bytes(b"y" * 2)
    os.symlink("d/a", tmp_path / "link")  # its size is its target's length: 3
    (tmp_path / "empty").write_bytes(b"")
    assert apparent_size(str(tmp_path)) == 15
    assert apparent_size(str(tmp_path / "missing")) == 0
