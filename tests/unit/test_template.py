"""rootless.cli.template: Go's text/template as ``docker --format`` exposes it.

Expected outputs are Go's and Docker's documented behaviour (Go's text/template and fmt
package documentation, docs.docker.com "Format command and log output", docker/cli's
template functions), not what this engine happens to print.
"""

import pytest

from rootless.cli import format as fmt
from rootless.cli.template import go_json, go_sprintf, parse, render
from rootless.errors import UsageError

# An inspected container, as its JSON decodes.
CONTAINER = {
    "Id": "4fa6e0f0c678",
    "Name": "/Web_App",
    "Args": ["-c", "echo hi"],
    "Config": {"Image": "busybox:1.36", "Labels": {"team": "hpc", "com.example.tier": "web"},
               "Env": None, "Cmd": ["sh", "-c", "echo hi"], "Note": "<b>&</b>"},
    "State": {"Status": "running", "Running": True, "ExitCode": 0, "Pid": 4242},
    "Mounts": [{"Source": "/srv", "Destination": "/data"}, {"Source": "/etc", "Destination": "/e"}],
    "NetworkSettings": {"Networks": {"frontend": {"IPAddress": "10.0.1.2"}, "bridge": {"IPAddress": "172.17.0.2"}}},
    "Size": 1000000,
    "Ratio": 0.25,
}


def r(template, data=CONTAINER, strict=False):
    return render(template, data, strict)


@pytest.mark.parametrize("template, out", [
    # docs.docker.com "Format command and log output"
    ("{{json .Config.Labels}}", '{"team":"hpc","com.example.tier":"web"}'),
    ('{{join .Args " , "}}', "-c , echo hi"),
    ("{{lower .Name}}", "/web_app"),
    ("{{upper .Name}}", "/WEB_APP"),
    ("{{title .Config.Image}}", "Busybox:1.36"),
    ('{{split .Config.Image ":"}}', "[busybox 1.36]"),
    ("{{range .NetworkSettings.Networks}}{{println .IPAddress}}{{end}}", "172.17.0.2\n10.0.1.2\n"),
    # the brief's list
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "172.17.0.210.0.1.2"),  # sorted keys
    ('{{index .Config.Labels "team"}}', "hpc"),
    ('{{index .Config.Labels "nope"}}', ""),        # a string map's zero value
    ('{{if eq .State.Status "running"}}up{{else}}down{{end}}', "up"),
    ('{{if eq .State.Status "exited"}}up{{else}}down{{end}}', "down"),
    ("{{len .Mounts}}", "2"),
    ("{{.Name | upper}}", "/WEB_APP"),
    ("{{println .Id}}{{println .State.Pid}}", "4fa6e0f0c678\n4242\n"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}", "com.example.tier=web team=hpc "),
    ('{{printf "%s-%d" .Config.Image 3}}', "busybox:1.36-3"),
    ("{{with .State}}{{.Status}}/{{.Pid}}{{end}}", "running/4242"),
    ("{{with .Nope}}yes{{else}}no{{end}}", "no"),
    ("{{with .Config.Env}}yes{{else}}no{{end}}", "no"),
])
def test_golden(template, out):
    assert r(template) == out


@pytest.mark.parametrize("template", [
    # Go's text/template documentation: every one of these prints "output", quoted
    '{{"\\"output\\""}}', '{{`"output"`}}', '{{printf "%q" "output"}}', '{{"output" | printf "%q"}}',
    '{{printf "%q" (print "out" "put")}}', '{{"put" | printf "%s%s" "out" | printf "%q"}}',
    '{{"output" | printf "%s" | printf "%q"}}', '{{with "output"}}{{printf "%q" .}}{{end}}',
    '{{with $x := "output" | printf "%q"}}{{$x}}{{end}}', '{{with $x := "output"}}{{printf "%q" $x}}{{end}}',
    '{{with $x := "output"}}{{$x | printf "%q"}}{{end}}',
])
def test_go_documentation_pipelines(template):
    assert r(template, None) == '"output"'


def test_trim_markers_and_comments():
    assert r("{{23 -}} < {{- 45}}", None) == "23<45"      # Go's documentation example
    assert r("a \n {{- /* a comment */ -}} \n b", None) == "ab"
    assert r("a {{/* kept */}} b", None) == "a  b"
    assert r("{{-3}}", None) == "-3"                         # a number, not a trim marker
    assert r("x\n{{- range .Args}}\n  {{.}}\n{{- end}}\n") == "x\n  -c\n  echo hi\n"


@pytest.mark.parametrize("template, out", [
    ("{{.c}} {{slice .b 0 1}}", "map[d:true] [x]"),
    ("{{.b}}", "[x <nil>]"),
    ("{{.c.d}}", "true"),
    ("{{.e}}", "<no value>"),
    ("{{print .e}}", "<nil>"),
    ("{{.f}} {{.g}} {{.h}} {{.i}} {{.j}}", "1e+06 0.5 100 1e-05 123456"),
    ("{{.k}}", "10000000"),
])
def test_go_printing(template, out):
    assert r("{{.}}", {"b": ["x", None], "a": 1, "c": {"d": True}}) == "map[a:1 b:[x <nil>] c:map[d:true]]"
    data = {"a": 1, "b": ["x", None], "c": {"d": True}, "e": None, "f": 1e6, "g": 0.5, "h": 100.0,
            "i": 0.00001, "j": 123456.0, "k": 10000000}
    assert r(template, data) == out


@pytest.mark.parametrize("template, out", [
    ("{{range .Mounts}}{{.Destination}};{{end}}", "/data;/e;"),
    ("{{range $i, $m := .Mounts}}{{if $i}},{{end}}{{$i}}:{{$m.Source}}{{end}}", "0:/srv,1:/etc"),
    ("{{range $m := .Mounts}}{{$m.Source}} {{end}}", "/srv /etc "),
    ("{{range .Config.Env}}x{{else}}none{{end}}", "none"),
    ("{{range .Nope}}x{{else}}none{{end}}", "none"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{range .Args}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}}{{end}}", "echo hi"),
    ("{{range .Args}}{{if eq . \"echo hi\"}}{{break}}{{end}}{{.}}{{end}}", "-c"),
    ("{{range .Config.Cmd}}[{{$.Id}}:{{.}}]{{end}}", "[4fa6e0f0c678:sh][4fa6e0f0c678:-c][4fa6e0f0c678:echo hi]"),
])
def test_range(template, out):
    assert r(template) == out


@pytest.mark.parametrize("template, out", [
    ("{{if .State.Running}}a{{else if .State.Pid}}b{{else}}c{{end}}", "a"),
    ("{{if .State.ExitCode}}a{{else if .State.Pid}}b{{else}}c{{end}}", "b"),
    ("{{if .State.ExitCode}}a{{else if .Config.Env}}b{{else}}c{{end}}", "c"),
    ("{{if and .State.Running (eq .State.ExitCode 0)}}ok{{end}}", "ok"),
    ("{{if or .Config.Env .Args}}some{{end}}", "some"),
    ("{{and 1 0 2}} {{and 1 2}} {{or 0 \"\"}} {{or 0 3}} {{not .Args}} {{not \"\"}}", "0 2  3 false true"),
    ("{{if not .Mounts}}none{{else}}{{len .Mounts}}{{end}}", "2"),
    ("{{eq .State.Status \"exited\" \"running\"}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1 2}}",
     "true true true true true false"),
    ("{{eq .Nope \"x\"}} {{eq .Config.Env nil}}", "false true"),
    ("{{$n := len .Args}}{{$n}}{{$n = 7}} {{$n}}", "2 7"),
    ("{{if $s := .State.Status}}{{$s}}{{end}}", "running"),
    ("{{(index .NetworkSettings.Networks \"bridge\").IPAddress}}", "172.17.0.2"),
    ("{{(index .Mounts 1).Source}} {{index .Args 0}} {{index .Config.Cmd 2}}", "/etc -c echo hi"),
    ("{{slice .Args 1}} {{slice .Id 0 4}} {{slice .Config.Cmd 1 2}}", "[echo hi] 4fa6 [-c]"),
    ("{{len .Id}} {{len .Config.Labels}}", "12 2"),
])
def test_control_variables_and_builtins(template, out):
    assert r(template) == out


@pytest.mark.parametrize("template, out", [
    ('{{printf "%5s|%-10s|" "ab" "cd"}}', "   ab|cd        |"),
    ('{{printf "%.2f %5.1f %e %g" 3.14159 2.25 1234.5678 0.000012}}', "3.14   2.2 1.234568e+03 1.2e-05"),
    ('{{printf "%d %5d %-5d| %05d %+d %x %X %o %#x %b %c %U" 42 42 42 42 42 255 255 8 255 5 65 65}}',
     "42    42 42   | 00042 +42 ff FF 10 0xff 101 A U+0041"),
    ('{{printf "%q %v %t %s" "a\\"b" .Args true .Config.Labels}}', '"a\\"b" [-c echo hi] true map[com.example.tier:web team:hpc]'),
    ('{{printf "%x %X % x" "hi" "hi" "hi"}}', "6869 6869 68 69"),
    ('{{printf "%.3s|%6.2s|" "abcdef" "abcdef"}}', "abc|    ab|"),
    ('{{printf "%v %v" 1.0 1e21}}', "1 1e+21"),
    ('{{printf "100%%"}}', "100%"),
    ('{{printf "%d" "x"}}', "%!d(string=x)"),
    ('{{printf "%s" 5}}', "%!s(int=5)"),
    ('{{printf "%d %d" 1}}', "1 %!d(MISSING)"),
    ('{{printf "%d" 1 2 "z"}}', "1%!(EXTRA int=2, string=z)"),
    ('{{printf "%z" 1}}', "%!z(int=1)"),
    ('{{printf "%"}}', "%!(NOVERB)"),
    ('{{printf "%s %v" nil nil}}', "%!s(<nil>) <nil>"),
    ('{{print "a" "b" 1 2 "c"}}', "ab1 2c"),
    ('{{println "a" 1 "b"}}', "a 1 b\n"),
])
def test_printf_is_gos(template, out):
    assert r(template) == out
    assert go_sprintf("%s=%d", "a", 1) == "a=1"


@pytest.mark.parametrize("value, out", [
    ({}, "{}"), ([], "[]"), (None, "null"), ("<&>", '"<&>"'),   # Docker's encoder leaves HTML alone
    ({"b": 1, "a": [True, None, 1.5]}, '{"b":1,"a":[true,null,1.5]}'),
    ("tab\tnl\ncr\r\x01\u2028é", '"tab\\tnl\\ncr\\r\\u0001\\u2028é"'),
    (1.0, "1"), (1e21, "1e+21"), (1e-7, "1e-7"), (1000000.0, "1000000"),
    ({"Label": lambda k: k, "ID": "x"}, '{"ID":"x"}'),
    ([1, float("nan")], ""), (float("inf"), ""),   # Go's encoder fails; Docker prints what it got: nothing
])
def test_json_is_dockers(value, out):
    assert go_json(value) == out
    assert r("{{json .}}", value) == out


def test_json_of_the_brief():
    assert r("{{json .Config}}") == ('{"Image":"busybox:1.36","Labels":{"team":"hpc","com.example.tier":"web"},'
                                     '"Env":null,"Cmd":["sh","-c","echo hi"],"Note":"<b>&</b>"}')
    assert r("{{json .Mounts}}") == '[{"Source":"/srv","Destination":"/data"},{"Source":"/etc","Destination":"/e"}]'


@pytest.mark.parametrize("template, out", [
    ("{{html .Config.Note}}", "&lt;b&gt;&amp;&lt;/b&gt;"),
    ("{{js .Config.Note}} {{js \"it's \\\"x\\\"=1\"}}", "\\u003Cb\\u003E\\u0026\\u003C/b\\u003E it\\'s \\\"x\\\"\\u003D1"),
    ('{{urlquery "a b&c=d/é"}}', "a+b%26c%3Dd%2F%C3%A9"),
    ('{{title "hello wORLD-x_y"}}', "Hello WORLD-X_y"),
    ('{{pad .Id 2 1}}|{{pad "" 2 1}}|', "  4fa6e0f0c678 ||"),
    ('{{truncate .Id 4}} {{truncate "ab" 9}}', "4fa6 ab"),
    ('{{split "a,b,,c" ","}} {{len (split "abc" "")}}', "[a b  c] 3"),
    ('{{join (split "a:b:c" ":") "-"}}', "a-b-c"),
    ('{{join .Config.Env ","}}', ""),
])
def test_escapers_and_docker_functions(template, out):
    assert r(template) == out


def test_callable_fields_take_arguments_like_go_methods():
    row = {"Names": "web", "Label": lambda name: {"team": "hpc"}.get(name, "")}
    assert r('{{.Label "team"}}', row, True) == "hpc"
    assert r('{{"team" | .Label}}', row, True) == "hpc"
    assert r('{{.Label .Names}}|', row, True) == "|"
    with pytest.raises(UsageError, match="wrong number of args for Label"):
        r("{{.Label}}", row, True)
    with pytest.raises(UsageError, match="Names is not a method but has arguments"):
        r('{{.Names "x"}}', row, True)


def test_strict_and_lenient_missing_keys():
    assert r("{{.Nope}}|{{.Config.Nope}}|{{.Nope.Deeper}}") == "<no value>|<no value>|<no value>"
    with pytest.raises(UsageError) as e:
        r("{{.Config.Nope}}", strict=True)
    assert str(e.value) == ('template: :1:2: executing "" at <.Config.Nope>: can\'t evaluate field Nope '
                            '(fields: Image, Labels, Env, Cmd, Note)')
    with pytest.raises(UsageError, match=r"nil pointer evaluating \.Config\.Env\.X"):
        r("{{.Config.Env.X}}", strict=True)
    with pytest.raises(UsageError, match="can't evaluate field X in type string"):
        r("{{.Id.X}}")


def test_parse_once_render_many():
    tmpl = parse("{{.N}}:{{range .L}}{{.}}{{end}}")
    assert [tmpl.execute({"N": i, "L": list(range(i))}) for i in range(4)] == ["0:", "1:0", "2:01", "3:012"]
    assert fmt.compile_template("{{.A}}") is fmt.compile_template("{{.A}}")


def test_funcs_override_at_execution():
    tmpl = parse("{{upper .A}}")
    assert tmpl.execute({"A": "x"}) == "X"
    assert tmpl.execute({"A": "x"}, funcs={"upper": lambda s: "<" + s + ">"}) == "<x>"


@pytest.mark.parametrize("template, message", [
    ("{{foo .X}}", 'template parsing error: template: :1:2: at <{{foo .X}}>: function "foo" not defined'),
    ("{{.A }{{.B}}", 'template parsing error: template: :1:5: at <{{.A }{{.B}}>: unexpected "}" in operand'),
    ("ab\n{{range .L}}x", "template parsing error: template: :2:0: at <{{range .L}}>: "
                          "unexpected EOF: {{range}} has no {{end}}"),
    ("{{if .A}}x{{else}}y", "unexpected EOF: {{if}} has no {{end}}"),
    ("{{with .A}}x", "unexpected EOF: {{with}} has no {{end}}"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{.A", "unclosed action"),
    ("{{.A |}}", "missing command after |"),
    ("{{.A | 3}}", "non executable command in pipeline stage 2"),
    ("{{$u}}", 'undefined variable "$u"'),
    ("{{range .L}}{{$e := .}}{{end}}{{$e}}", 'undefined variable "$e"'),
    ("{{$x = 1}}", 'undefined variable "$x"'),
    ("{{(.A}}", "unclosed left paren"),
    ("{{.A)}}", "unexpected right paren"),
    ('{{"abc}}', "unterminated quoted string"),
    ("{{3x}}", "bad number syntax"),
    ("{{/* x }}", "unclosed comment"),
    ("{{/* x */ .A}}", "comment ends before closing delimiter"),
    ("{{break}}", "{{break}} outside {{range}}"),
    ("{{if}}{{end}}", "missing value for if"),
    ('{{template "x"}}', "{{template}} is not supported"),
    ('{{define "x"}}{{end}}', "{{define}} is not supported"),
    ("{{call .F}}", 'function "call" is not supported'),
    ("{{range .L}}{{else if .X}}{{end}}", "{{else if}} in {{range}}"),
    ('{{"a" | printf "%s" | .}}', "non executable command in pipeline stage 3"),
    ("{{.A!}}", "bad character '!'"),
])
def test_parse_errors_name_the_action_and_come_before_output(template, message):
    with pytest.raises(UsageError) as e:
        parse(template)
    text = str(e.value)
    assert message in text and "\n" not in text, text
    assert text.startswith("template parsing error: template: :")


@pytest.mark.parametrize("template, message", [
    ('{{"a" "b"}}', 'at <"a" "b">: can\'t give argument to non-function "a"'),
    ("{{nil}}", "nil is not a command"),
    ("{{index .Args 5}}", "at <index .Args 5>: error calling index: index out of range: 5"),
    ("{{upper 1 2}}", "wrong number of args for upper: want 1 got 2"),
    ("{{printf}}", "wrong number of args for printf: want at least 1 got 0"),
    ('{{eq "a" 1}}', "error calling eq: incompatible types for comparison"),
    ("{{lt .Args 1}}", "error calling lt: invalid type for comparison"),
    ("{{len 3}}", "error calling len: len of type int"),
    ("{{range .Id}}{{end}}", "range can't iterate over 4fa6e0f0c678"),
    ("{{upper .Args}}", "expected string; got []interface {}"),
    ("{{truncate .Id \"x\"}}", "expected int; got string"),
])
def test_execution_errors(template, message):
    with pytest.raises(UsageError) as e:
        r(template)
    text = str(e.value)
    assert text.startswith('template: :1:') and message in text and "\n" not in text, text


def test_an_execution_error_keeps_what_was_rendered_before_it():
    with pytest.raises(UsageError) as e:
        r("a{{.Id}}b{{index .Args 9}}c")
    assert e.value.partial == "a4fa6e0f0c678b"


def test_format_emit_uses_the_engine_for_rows_and_header():
    rows = [{"Names": "web", "State": "running", "Labels": "a=b", "Label": lambda k: k + "!"},
            {"Names": "db", "State": "exited", "Labels": "", "Label": lambda k: k + "?"}]
    columns = [("NAMES", "Names"), ("STATE", "State"), ("LABELS", "Labels")]
    out = fmt.emit(rows, 'table {{.Names}}\\t{{if eq .State "running"}}up{{else}}{{upper .State}}{{end}}', columns)
    assert out.split("\n") == ["NAMES     STATE", "web       up", "db        EXITED"]  # the header: upper "STATE"
    out = fmt.emit(rows, "table {{upper .Names}}\\t{{pad .State 1 0}}\\t{{json .Labels}}", columns)
    assert out.split("\n")[0] == "NAMES      STATE     LABELS"  # header functions leave names, but pad pads
    assert fmt.emit(rows, '  {{.Names}}{{range split .Labels "="}}-{{.}}{{end}}  ', columns) == "web-a-b\ndb-"
    assert fmt.emit(rows, "json", columns).split("\n")[0] == '{"Names":"web","State":"running","Labels":"a=b"}'
    with pytest.raises(UsageError, match="can't evaluate field Nope"):
        fmt.emit(rows, "{{.Nope}}", columns)
    with pytest.raises(UsageError, match="template parsing error"):
        fmt.emit([], "{{if}}", columns)        # parsed even when there is nothing to list


def test_deep_nesting_is_a_usage_error_not_a_crash():
    for template in ["{{" + "(" * 5000 + "1" + ")" * 5000 + "}}", "{{if 1}}" * 3000 + "{{end}}" * 3000]:
        with pytest.raises(UsageError, match="nested too deep"):
            parse(template)
