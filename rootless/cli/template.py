"""Go's text/template, the part of it ``docker --format`` users write (pure: no I/O).

``parse(text)`` reads the whole template first (so a bad one fails before anything is
printed) and returns a ``Template``; ``Template.execute(data, strict, funcs)`` renders it, as
often as wanted (``ps`` parses once and renders every row).

The language, as Go's: text and ``{{actions}}``; ``{{-``/``-}}`` trim the white space on
their side; ``{{/* comments */}}``; literals (``"strings"`` with Go's escapes, ``raw``
strings in backquotes, ``'c'`` characters, numbers, ``true``, ``false``, ``nil``); ``.``,
``$``, fields ``.A.B`` (of ``.``, of ``$x``, of ``(sub expressions)``); variables
``$x := pipeline`` and ``$x = pipeline``; pipelines ``a | b c`` (the value goes last into
the next command); ``{{if}}``/``{{else if}}``/``{{else}}``/``{{end}}``, ``{{with}}``
(``{{else with}}``), ``{{range}}`` over lists, maps (sorted keys) and integers, with
``$i, $e :=``, ``{{else}}``, ``{{break}}`` and ``{{continue}}``. Go's truth: false, 0, nil
and empty strings, lists and maps are false. ``{{define}}``, ``{{template}}``,
``{{block}}`` and ``call`` are refused when parsing.

Functions: Go's ``and or not len index slice print printf println eq ne lt le gt ge html
js urlquery``; Docker's ``json`` (compact, HTML left alone as Docker's encoder has it),
``join split title lower upper pad truncate``. ``funcs`` overrides some by name at
execution (``format.emit`` renders a table's header with Docker's header functions).

The data are what ``json.loads`` gives (dicts, lists, str, int, float, bool, None), and
callables standing for Go methods: ``{{.Label "key"}}`` calls ``row["Label"]("key")``.
Dicts stand for Go structs as well as maps, so two decisions:

* ``strict=True`` (a listing's rows, like Docker's Go structs): a missing key is an error
  naming the fields there are, as is a field of nil. ``strict=False`` (an inspected
  object's JSON, where Go's maps print a missing key as ``<no value>``): a missing key,
  and any field of nil, is nil.
* A dict keeps its order in ``json`` (a struct's field order); ``range`` and printing sort
  its keys (a map's, as Go does). nil stands for an empty list or map where one is
  expected (``len``, ``index``, ``join``, ``range``), as a Go struct's nil slice or map.

Printing is Go's: ``<no value>`` for nil (``<nil>`` inside lists and maps, and in
``print``), ``[a b]``, ``map[a:1 b:2]``, ``true``, floats as Go's ``%v`` (``1e+06``).
Where Go's types would decide and JSON's cannot, rootless is lenient: strings count
characters, not bytes (``len``, ``slice``, ``truncate``); numbers compare across int and
float, and ``printf``'s float verbs take ints.

Errors are ``UsageError``s of one line in Go's words, with the line, column and text of the
action: ``template parsing error: template: :1:2: at <{{foo}}>: function "foo" not
defined``; ``template: :1:2: executing "" at <.Nope>: can't evaluate field Nope (fields: ID, Names)``.
"""

import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from rootless.cli.format import go_quote
from rootless.errors import UsageError

__all__ = ["parse", "Template", "render", "go_print", "go_json", "go_sprintf"]

_SPACE = " \t\r\n"
_KEYWORDS = ("if", "else", "end", "range", "with", "break", "continue", "define", "template", "block")
_MISSING = object()  # "no value piped in" (None is Go's nil)


# -- errors ---------------------------------------------------------------------------------------

class _ParseError(Exception):
    def __init__(self, message: str, pos: int):
        super().__init__(message)
        self.message, self.pos = message, pos


class _ExecError(Exception):
    def __init__(self, message: str, node: "Optional[_Node]" = None):
        super().__init__(message)
        self.message, self.node = message, node


class _FuncError(Exception):
    """Raised by a function; reported as Go's ``error calling NAME: ...``."""


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    return "%d:%d" % (line, pos - (text.rfind("\n", 0, pos) + 1))


def _snippet(text: str, limit: int = 40) -> str:
    text = text.replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= limit else text[:limit] + "..."


# -- lexer ----------------------------------------------------------------------------------------

class _Tok:
    __slots__ = ("kind", "val", "pos", "end", "text")

    def __init__(self, kind: str, val: Any, pos: int, end: int, text: str):
        self.kind, self.val, self.pos, self.end, self.text = kind, val, pos, end, text

    def describe(self) -> str:
        """As Go names a token in "unexpected ...": ``"}"``, ``<if>``, ``EOF``."""
        if self.kind == "eof":
            return "EOF"
        if self.kind == "keyword":
            return "<%s>" % self.val
        return go_quote(_snippet(self.text))


def _alnum(c: str) -> bool:
    return c == "_" or c.isalnum()


_TERMINATORS = set(_SPACE) | set(".,|:()")
_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?|0[oObB][0-7_]*|"
                     r"[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?)i?")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


class _Lexer:
    """Splits a template into text and the tokens of its actions, as Go's lexer."""

    def __init__(self, text: str):
        self.text, self.toks = text, []  # type: str, List[_Tok]
        self.action_start = 0

    def run(self) -> List[_Tok]:
        text, pos = self.text, 0
        while True:
            start = text.find("{{", pos)
            if start < 0:
                self._emit("text", text[pos:], pos, len(text))
                break
            trim_left = text.startswith("{{-", start) and start + 3 < len(text) and text[start + 3] in _SPACE
            self._emit("text", text[pos:start], pos, start)
            self.action_start = start
            inner = start + (4 if trim_left else 2)
            if text.startswith("/*", inner):
                pos = self._comment(start, inner, trim_left)
                continue
            self._emit("ldelim", trim_left, start, inner)
            pos = self._action(inner)
        self._emit("eof", None, len(text), len(text))
        return self.toks

    def _emit(self, kind: str, val: Any, pos: int, end: int) -> None:
        self.toks.append(_Tok(kind, val, pos, end, self.text[pos:end]))

    def _fail(self, message: str, pos: int):
        raise _ParseError(message, pos)

    def _comment(self, start: int, inner: int, trim_left: bool) -> int:
        text = self.text
        close = text.find("*/", inner + 2)
        if close < 0:
            self._fail("unclosed comment", start)
        pos = close + 2
        trim_right = pos + 3 <= len(text) and text[pos] in _SPACE and text.startswith("-}}", pos + 1)
        if not (trim_right or text.startswith("}}", pos)):
            self._fail("comment ends before closing delimiter", start)
        end = pos + (4 if trim_right else 2)
        self._emit("comment", (trim_left, trim_right), start, end)
        return end

    def _action(self, pos: int) -> int:
        text, n, depth = self.text, len(self.text), 0
        while True:
            if pos < n - 3 and text[pos] in _SPACE and text.startswith("-}}", pos + 1):
                if depth:
                    self._fail("unclosed left paren", pos)
                self._emit("rdelim", True, pos, pos + 4)
                return pos + 4
            if text.startswith("}}", pos):
                if depth:
                    self._fail("unclosed left paren", pos)
                self._emit("rdelim", False, pos, pos + 2)
                return pos + 2
            if pos >= n:
                self._fail("unclosed action", self.action_start)
            c = text[pos]
            if c in _SPACE:
                end = pos + 1  # (the space of a " -}}" at pos was taken above)
                while end < n and text[end] in _SPACE and not text.startswith("-}}", end + 1):
                    end += 1
                self._emit("space", None, pos, end)
                pos = end
            elif c == '"':
                pos = self._quoted(pos)
            elif c == "`":
                end = text.find("`", pos + 1)
                if end < 0:
                    self._fail("unterminated raw quoted string", pos)
                self._emit("string", text[pos + 1:end], pos, end + 1)
                pos = end + 1
            elif c == "'":
                pos = self._char(pos)
            elif c == "$":
                pos = self._word("var", pos, pos + 1)
            elif c == "." and pos + 1 < n and text[pos + 1].isdigit():
                pos = self._number(pos)
            elif c == ".":
                if pos + 1 < n and _alnum(text[pos + 1]):
                    pos = self._word("field", pos, pos + 1)
                else:
                    self._emit("dot", None, pos, pos + 1)
                    pos += 1
            elif c in "+-" or c.isdigit():
                pos = self._number(pos)
            elif _alnum(c):
                pos = self._word("ident", pos, pos)
            elif c == ":":
                if not text.startswith(":=", pos):
                    self._fail("expected :=", pos)
                self._emit("declare", None, pos, pos + 2)
                pos += 2
            elif c in "=,|":
                self._emit({"=": "assign", ",": "comma", "|": "pipe"}[c], None, pos, pos + 1)
                pos += 1
            elif c == "(":
                depth += 1
                self._emit("lparen", None, pos, pos + 1)
                pos += 1
            elif c == ")":
                depth -= 1
                if depth < 0:
                    self._fail("unexpected right paren", pos)
                self._emit("rparen", None, pos, pos + 1)
                pos += 1
            elif c.isprintable():
                self._emit("char", c, pos, pos + 1)
                pos += 1
            else:
                self._fail("unrecognized character in action: %s" % ascii(c), pos)

    def _word(self, kind: str, start: int, pos: int) -> int:
        text, n = self.text, len(self.text)
        while pos < n and _alnum(text[pos]):
            pos += 1
        if pos < n and text[pos] not in _TERMINATORS and not text.startswith("}}", pos):
            self._fail("bad character %s" % ascii(text[pos]), pos)
        word = text[start:pos]
        if kind == "ident":
            if word in ("true", "false"):
                kind, word = "bool", word == "true"
            elif word == "nil":
                kind = "nil"
            elif word in _KEYWORDS:
                kind = "keyword"
        elif kind == "field":
            word = word[1:]
        self._emit(kind, word, start, pos)
        return pos

    def _number(self, pos: int) -> int:
        m = _NUMBER.match(self.text, pos)
        end = m.end()
        word = self.text[pos:end]
        if end < len(self.text) and _alnum(self.text[end]) or not any(c.isdigit() for c in word):
            self._fail("bad number syntax: %r" % self.text[pos:end + 1], pos)
        self._emit("number", _number_value(word, lambda msg: self._fail(msg, pos)), pos, end)
        return end

    def _quoted(self, pos: int) -> int:
        text, n, out, i = self.text, len(self.text), [], pos + 1
        while True:
            if i >= n or text[i] == "\n":
                self._fail("unterminated quoted string", pos)
            c = text[i]
            if c == '"':
                break
            if c == "\\":
                value, i = self._escape(i, '"', pos)
                out.append(value)
                continue
            out.append(c)
            i += 1
        self._emit("string", "".join(out), pos, i + 1)
        return i + 1

    def _char(self, pos: int) -> int:
        text, n = self.text, len(self.text)
        if pos + 1 >= n:
            self._fail("unterminated character constant", pos)
        if text[pos + 1] == "\\":
            value, i = self._escape(pos + 1, "'", pos)
        else:
            value, i = text[pos + 1], pos + 2
        if i >= n or text[i] != "'" or len(value) != 1:
            self._fail("malformed character constant: %s" % text[pos:i + 1], pos)
        self._emit("number", ord(value), pos, i + 1)
        return i + 1

    def _escape(self, i: int, quote: str, start: int) -> "Tuple[str, int]":
        """One backslash escape of Go's string syntax at ``i``: (its value, the index after)."""
        text = self.text
        c = text[i + 1:i + 2]
        if c in _ESCAPES:
            return _ESCAPES[c], i + 2
        if c == quote:
            return c, i + 2
        digits = {"x": 2, "u": 4, "U": 8}.get(c)
        if digits:
            hexa = text[i + 2:i + 2 + digits]
            if len(hexa) == digits and all(h in "0123456789abcdefABCDEF" for h in hexa):
                code = int(hexa, 16)
                if code <= 0x10FFFF and not 0xD800 <= code < 0xE000:
                    return chr(code), i + 2 + digits
        elif c in "01234567":
            octal = text[i + 1:i + 4]
            if len(octal) == 3 and all(o in "01234567" for o in octal) and int(octal, 8) < 256:
                return chr(int(octal, 8)), i + 4
        self._fail("invalid syntax in quoted string: %s" % _snippet(text[start:i + 2]), start)


def _number_value(word: str, fail: Callable[[str], None]) -> Any:
    if word.endswith("i"):
        fail("complex numbers are not supported: %s" % word)
    body = word.lstrip("+-")
    sign = -1 if word.startswith("-") else 1
    try:
        if re.fullmatch(r"0[xX][0-9a-fA-F_]+|0[oObB][0-7_]+|[0-9_]+", body):
            if re.fullmatch(r"0[0-7_]+", body):
                return sign * int(body, 8)
            return sign * int(body, 0)
        if body[:2] in ("0x", "0X"):
            return sign * float.fromhex(body.replace("_", ""))
        return sign * float(body.replace("_", ""))
    except ValueError:
        fail("bad number syntax: %r" % word)


# -- nodes ----------------------------------------------------------------------------------------

class _Node:
    __slots__ = ("pos", "end")

    def __init__(self, pos: int, end: int):
        self.pos, self.end = pos, end


class _Text(_Node):
    __slots__ = ("text",)


class _Literal(_Node):
    __slots__ = ("value",)


class _Dot(_Node):
    __slots__ = ()


class _Nil(_Node):
    __slots__ = ()


class _Field(_Node):
    __slots__ = ("names",)


class _Variable(_Node):
    __slots__ = ("name", "names")


class _Ident(_Node):
    __slots__ = ("name",)


class _Chain(_Node):
    __slots__ = ("node", "names")


class _Command(_Node):
    __slots__ = ("args",)


class _Pipe(_Node):
    __slots__ = ("decls", "assign", "cmds")


class _Action(_Node):
    __slots__ = ("pipe",)


class _Branch(_Node):
    """``if``, ``with`` and ``range``: a pipeline, its body, and what ``{{else}}`` holds."""
    __slots__ = ("kind", "pipe", "body", "orelse")


class _Break(_Node):
    __slots__ = ()


class _Continue(_Node):
    __slots__ = ()


def _make(cls, pos: int, end: int, **fields):
    node = cls(pos, end)
    for k, v in fields.items():
        setattr(node, k, v)
    return node


# -- parser ---------------------------------------------------------------------------------------

class _Parser:
    """Go's text/template/parse, for one template without definitions."""

    def __init__(self, text: str, funcs):
        self.text, self.funcs = text, funcs
        self.toks = _Lexer(text).run()
        self.i = 0
        self.vars = ["$"]
        self.range_depth = 0
        self.action_start = 0
        self._trim_texts()

    def _trim_texts(self) -> None:
        toks = self.toks
        for j, tok in enumerate(toks):
            if tok.kind == "text":
                if j > 0 and (toks[j - 1].kind == "rdelim" and toks[j - 1].val or
                              toks[j - 1].kind == "comment" and toks[j - 1].val[1]):
                    tok.val = tok.val.lstrip(_SPACE)
                after = toks[j + 1] if j + 1 < len(toks) else None
                if after is not None and (after.kind == "ldelim" and after.val or
                                          after.kind == "comment" and after.val[0]):
                    tok.val = tok.val.rstrip(_SPACE)

    # tokens
    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def skip_space(self) -> None:
        while self.toks[self.i].kind == "space":
            self.i += 1

    def peek_nonspace(self) -> _Tok:
        self.skip_space()
        return self.toks[self.i]

    def next_nonspace(self) -> _Tok:
        self.skip_space()
        return self.next()

    def fail(self, message: str, pos: Optional[int] = None):
        raise _ParseError(message, self.action_start if pos is None else pos)

    def unexpected(self, tok: _Tok, context: str):
        if tok.kind == "eof":
            self.fail("unclosed action", self.action_start)
        self.fail("unexpected %s in %s" % (tok.describe(), context), tok.pos)

    # structure
    def parse(self) -> List[_Node]:
        nodes, stop = self.item_list()
        if stop is not None:
            self.fail("unexpected {{%s}}" % stop[0], stop[1])
        return nodes

    def item_list(self) -> "Tuple[List[_Node], Optional[Tuple[str, int]]]":
        """Nodes up to ``{{end}}`` or ``{{else}}`` (returned as (word, position)) or EOF (None)."""
        nodes = []  # type: List[_Node]
        while True:
            tok = self.next()
            if tok.kind == "eof":
                return nodes, None
            if tok.kind == "text":
                if tok.val:
                    nodes.append(_make(_Text, tok.pos, tok.end, text=tok.val))
            elif tok.kind == "comment":
                continue
            elif tok.kind == "ldelim":
                self.action_start = tok.pos
                node = self.action()
                if isinstance(node, tuple):
                    return nodes, node
                if node is not None:
                    nodes.append(node)

    def action(self):
        start = self.action_start
        tok = self.peek_nonspace()
        if tok.kind == "keyword":
            self.next()
            word = tok.val
            if word == "end":
                self.expect_rdelim("end")
                return ("end", start)
            if word == "else":
                after = self.peek_nonspace()
                if after.kind == "keyword" and after.val in ("if", "with"):
                    return ("else " + after.val, start)
                self.expect_rdelim("else")
                return ("else", start)
            if word in ("if", "with", "range"):
                return self.control(word, start)
            if word in ("break", "continue"):
                self.expect_rdelim(word)
                if not self.range_depth:
                    self.fail("{{%s}} outside {{range}}" % word, start)
                return _make(_Break if word == "break" else _Continue, start, self.toks[self.i - 1].end)
            self.fail("{{%s}} is not supported: rootless renders one template, without definitions" % word, start)
        if tok.kind == "rdelim":  # {{}}: nothing (rootless has always let it pass)
            self.next()
            return None
        pipe = self.pipeline("command", "rdelim")
        return _make(_Action, start, self.toks[self.i - 1].end, pipe=pipe)

    def expect_rdelim(self, context: str) -> None:
        tok = self.next_nonspace()
        if tok.kind != "rdelim":
            self.unexpected(tok, context)

    def control(self, kind: str, start: int) -> _Branch:
        mark = len(self.vars)
        pipe = self.pipeline(kind, "rdelim")
        if kind == "range":
            self.range_depth += 1
        body, stop = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        orelse = None
        if stop is None:
            self.fail("unexpected EOF: {{%s}} has no {{end}}" % kind, start)
        if stop[0].startswith("else "):
            chained = stop[0][5:]
            if chained != kind:
                self.fail("{{else %s}} in {{%s}}: only {{if}} takes {{else if}}, and {{with}} "
                          "{{else with}}" % (chained, kind), stop[1])
            self.next_nonspace()  # the "if" or "with": {{else if x}} is {{else}}{{if x}}..{{end}}{{end}}
            saved, self.action_start = self.action_start, stop[1]
            orelse = [self.control(kind, stop[1])]
            self.action_start = saved
        elif stop[0] == "else":
            orelse, stop = self.item_list()
            if stop is None:
                self.fail("unexpected EOF: {{%s}} has no {{end}}" % kind, start)
            if stop[0] != "end":
                self.fail("expected {{end}}; found {{%s}}" % stop[0], stop[1])
        del self.vars[mark:]
        return _make(_Branch, start, self.toks[self.i - 1].end, kind=kind, pipe=pipe, body=body, orelse=orelse)

    def pipeline(self, context: str, end: str) -> _Pipe:
        start = self.peek_nonspace().pos
        decls, assign = [], False  # type: List[str], bool
        tok = self.peek()
        if tok.kind == "var":
            save = self.i
            self.next()
            after = self.peek_nonspace()
            if after.kind in ("declare", "assign"):
                self.next()
                assign = after.kind == "assign"
                decls.append(tok.val)
            elif after.kind == "comma" and context == "range":
                self.next()
                second = self.next_nonspace()
                if second.kind != "var":
                    self.fail("range can only initialize variables", second.pos)
                op = self.next_nonspace()
                if op.kind not in ("declare", "assign"):
                    self.unexpected(op, "range")
                assign = op.kind == "assign"
                decls += [tok.val, second.val]
            elif after.kind == "comma":
                self.fail("too many declarations in %s" % context, after.pos)
            else:
                self.i = save
            for name in decls:
                if assign:
                    self.use_var(name, tok.pos)
                else:
                    self.vars.append(name)
        cmds = []  # type: List[_Command]
        while True:
            tok = self.next_nonspace()
            if tok.kind == end:
                if cmds and self.toks[self.i - 2].kind in ("pipe", "space") and self._piped():
                    self.fail("missing command after |", tok.pos)
                break
            if tok.kind in ("bool", "number", "string", "nil", "dot", "field", "var", "ident", "lparen"):
                self.i -= 1
                cmds.append(self.command())
            else:
                self.unexpected(tok, context)
        if not cmds:
            self.fail("missing value for %s" % context, tok.pos)
        for n, cmd in enumerate(cmds[1:], 2):
            if isinstance(cmd.args[0], (_Literal, _Dot, _Nil)):
                self.fail("non executable command in pipeline stage %d" % n, cmd.pos)
        return _make(_Pipe, start, tok.pos, decls=decls, assign=assign, cmds=cmds)

    def _piped(self) -> bool:
        """Whether the token before the current one, spaces aside, is a "|"."""
        j = self.i - 2
        while self.toks[j].kind == "space":
            j -= 1
        return self.toks[j].kind == "pipe"

    def command(self) -> _Command:
        args = []  # type: List[_Node]
        start = self.peek_nonspace().pos
        while True:
            self.skip_space()
            operand = self.operand()
            if operand is not None:
                args.append(operand)
            tok = self.next()
            if tok.kind == "space":
                continue
            if tok.kind in ("rdelim", "rparen"):
                self.i -= 1
            elif tok.kind != "pipe":
                self.unexpected(tok, "operand")
            break
        if not args:
            self.fail("missing command", start)
        return _make(_Command, start, args[-1].end, args=args)

    def operand(self) -> Optional[_Node]:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        names = []
        while self.peek().kind == "field":
            tok = self.next()
            names.append(tok.val)
            end = tok.end
        if isinstance(node, _Field):
            return _make(_Field, node.pos, end, names=node.names + names)
        if isinstance(node, _Variable):
            return _make(_Variable, node.pos, end, name=node.name, names=node.names + names)
        if isinstance(node, (_Literal, _Nil, _Dot)):
            self.fail("unexpected . after term %s" % self.text[node.pos:node.end], node.end)
        return _make(_Chain, node.pos, end, node=node, names=names)

    def term(self) -> Optional[_Node]:
        tok = self.next_nonspace()
        kind = tok.kind
        if kind == "ident":
            if tok.val == "call":
                self.fail('function "call" is not supported: fields that take arguments are called '
                          'directly, e.g. {{.Label "key"}}', tok.pos)
            if tok.val not in self.funcs:
                self.fail("function %s not defined" % go_quote(tok.val), tok.pos)
            return _make(_Ident, tok.pos, tok.end, name=tok.val)
        if kind == "dot":
            return _make(_Dot, tok.pos, tok.end)
        if kind == "nil":
            return _make(_Nil, tok.pos, tok.end)
        if kind == "var":
            self.use_var(tok.val, tok.pos)
            return _make(_Variable, tok.pos, tok.end, name=tok.val, names=[])
        if kind == "field":
            return _make(_Field, tok.pos, tok.end, names=[tok.val])
        if kind in ("bool", "number", "string"):
            return _make(_Literal, tok.pos, tok.end, value=tok.val)
        if kind == "lparen":
            pipe = self.pipeline("parenthesized pipeline", "rparen")
            pipe.pos, pipe.end = tok.pos, self.toks[self.i - 1].end
            return pipe
        self.i -= 1
        return None

    def use_var(self, name: str, pos: int) -> None:
        if name not in self.vars:
            self.fail("undefined variable %s" % go_quote(name), pos)


# -- execution ------------------------------------------------------------------------------------

class _Break_(Exception):
    pass


class _Continue_(Exception):
    pass


class Template:
    """A parsed template; ``execute`` it on as many objects as wanted."""

    def __init__(self, text: str):
        self.text = text
        try:
            self.nodes = _Parser(text, FUNCS).parse()
        except _ParseError as e:
            raise UsageError("template parsing error: template: :%s: at <%s>: %s" % (
                _where(text, e.pos), _snippet(self._action_at(e.pos)), e.message))
        except RecursionError:
            raise UsageError("template parsing error: template: parentheses or control structures "
                             "nested too deep")

    def _action_at(self, pos: int) -> str:
        start = self.text.rfind("{{", 0, pos + 2)
        if start < 0:
            return self.text[pos:pos + 40]
        end = self.text.find("}}", pos)
        return self.text[start:end + 2 if end >= 0 else len(self.text)]

    def execute(self, data: Any, strict: bool = True, funcs: Optional[Dict[str, Callable]] = None) -> str:
        """Render ``data``; ``strict``: a missing key is an error (else nil, see above)."""
        run = _Run(data, strict, dict(FUNCS, **funcs) if funcs else FUNCS)
        try:
            run.walk(data, self.nodes)
        except _ExecError as e:
            node = e.node
            where = _where(self.text, node.pos) if node else "1:0"
            context = _snippet(self.text[node.pos:node.end]) if node else ""
            error = UsageError('template: :%s: executing "" at <%s>: %s' % (where, context, e.message))
            error.partial = "".join(run.out)
            raise error
        except RecursionError:
            raise UsageError('template: executing "": nested too deep')
        return "".join(run.out)


def parse(text: str) -> Template:
    return Template(text)


def render(text: str, data: Any, strict: bool = True) -> str:
    return Template(text).execute(data, strict)


class _Run:
    """One execution: the output, the variables (a stack, as Go's), the options."""

    def __init__(self, data: Any, strict: bool, funcs: Dict[str, Callable]):
        self.out = []  # type: List[str]
        self.vars = [["$", data]]  # type: List[list]
        self.strict, self.funcs = strict, funcs

    def walk(self, dot: Any, nodes: List[_Node]) -> None:
        for node in nodes:
            cls = type(node)
            if cls is _Text:
                self.out.append(node.text)
            elif cls is _Action:
                value = self.pipe(dot, node.pipe)
                if not node.pipe.decls:
                    self.out.append(_print_value(value, node))
            elif cls is _Branch:
                if node.kind == "range":
                    self.range(dot, node)
                else:
                    self.if_with(dot, node)
            elif cls is _Break:
                raise _Break_()
            elif cls is _Continue:
                raise _Continue_()

    def if_with(self, dot: Any, node: _Branch) -> None:
        mark = len(self.vars)
        value = self.pipe(dot, node.pipe)
        if truth(value):
            self.walk(value if node.kind == "with" else dot, node.body)
        elif node.orelse:
            self.walk(dot, node.orelse)
        del self.vars[mark:]

    def range(self, dot: Any, node: _Branch) -> None:
        mark = len(self.vars)
        value = self.pipe(dot, node.pipe)
        decls = node.pipe.decls
        if isinstance(value, dict):
            items = [(k, value[k]) for k in _sorted_keys(value)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            if len(decls) > 1:
                raise _ExecError("can't use %s, %s to iterate over more than one variable" % tuple(decls),
                                 node.pipe)
            items = [(i, i) for i in range(value)]
        elif value is None:
            items = []
        else:
            raise _ExecError("range can't iterate over %s" % _go_value(value), node.pipe)
        inner = len(self.vars)
        for key, elem in items:
            if decls:
                self.vars[-1][1] = elem
                if len(decls) > 1:
                    self.vars[-2][1] = key
            try:
                self.walk(elem, node.body)
            except _Continue_:
                pass
            except _Break_:
                break
            finally:
                del self.vars[inner:]
        if not items and node.orelse:
            self.walk(dot, node.orelse)
        del self.vars[mark:]

    def pipe(self, dot: Any, pipe: _Pipe) -> Any:
        value = _MISSING
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        for name in pipe.decls:
            if pipe.assign:
                self.set_var(name, value)
            else:
                self.vars.append([name, value])
        return value

    def command(self, dot: Any, cmd: _Command, final: Any) -> Any:
        first, args = cmd.args[0], cmd.args[1:]
        cls = type(first)
        if cls is _Field:
            return self.fields(dot, first, dot, first.names, args, final)
        if cls is _Variable:
            return self.fields(dot, first, self.var(first.name, first), first.names, args, final)
        if cls is _Chain:
            return self.fields(dot, first, self.arg(dot, first.node), first.names, args, final)
        if cls is _Ident:
            return self.call(dot, first.name, args, final, cmd)
        if args or final is not _MISSING:
            raise _ExecError("can't give argument to non-function %s" % _text_of(first), cmd)
        if cls is _Nil:
            raise _ExecError("nil is not a command", cmd)
        return self.arg(dot, first)

    def arg(self, dot: Any, node: _Node) -> Any:
        cls = type(node)
        if cls is _Literal:
            return node.value
        if cls is _Dot:
            return dot
        if cls is _Nil:
            return None
        if cls is _Field:
            return self.fields(dot, node, dot, node.names, [], _MISSING)
        if cls is _Variable:
            return self.fields(dot, node, self.var(node.name, node), node.names, [], _MISSING)
        if cls is _Chain:
            return self.fields(dot, node, self.arg(dot, node.node), node.names, [], _MISSING)
        if cls is _Ident:
            return self.call(dot, node.name, [], _MISSING, node)
        if cls is _Pipe:
            mark = len(self.vars)
            value = self.pipe(dot, node)
            del self.vars[mark:]
            return value
        raise _ExecError("cannot evaluate %s" % _text_of(node), node)

    def var(self, name: str, node: _Node) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        raise _ExecError("undefined variable: %s" % name, node)

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return

    def fields(self, dot: Any, node: _Node, receiver: Any, names: List[str], args: List[_Node], final: Any) -> Any:
        """``receiver.A.B``, the last one called with ``args`` (and ``final``) if a method."""
        path = ""
        for n, name in enumerate(names):
            last = n == len(names) - 1
            has_args = last and (bool(args) or final is not _MISSING)
            path += "." + name
            if receiver is None:
                if self.strict:
                    raise _ExecError("nil pointer evaluating %s" % path, node)
                if has_args:
                    raise _ExecError("%s is not a method but has arguments" % name, node)
                return None
            if not isinstance(receiver, dict):
                raise _ExecError("can't evaluate field %s in type %s" % (name, _go_type(receiver)), node)
            if name not in receiver:
                if self.strict:
                    known = [k for k in receiver if isinstance(k, str)]
                    raise _ExecError("can't evaluate field %s (fields: %s)" % (name, ", ".join(known) or "none"),
                                     node)
                if has_args:
                    raise _ExecError("%s is not a method but has arguments" % name, node)
                return None
            value = receiver[name]
            if callable(value):
                values = [self.arg(dot, a) for a in args] if last else []
                if last and final is not _MISSING:
                    values.append(final)
                try:
                    value = value(*values)
                except TypeError:
                    raise _ExecError("wrong number of args for %s: got %d" % (name, len(values)), node)
            elif has_args:
                raise _ExecError("%s is not a method but has arguments" % name, node)
            receiver = value
        return receiver

    def call(self, dot: Any, name: str, args: List[_Node], final: Any, node: _Node) -> Any:
        if name in ("and", "or"):
            nodes = list(args)
            if not nodes and final is _MISSING:
                raise _ExecError("wrong number of args for %s: want at least 1 got 0" % name, node)
            value = None
            for a in nodes:
                value = self.arg(dot, a)
                if truth(value) != (name == "and"):
                    return value
            return final if final is not _MISSING else value
        values = [self.arg(dot, a) for a in args]
        if final is not _MISSING:
            values.append(final)
        low, high = _ARITY[name]
        if len(values) < low or high is not None and len(values) > high:
            want = ("at least %d" % low) if high is None else ("%d" % low if low == high else "%d to %d" % (low, high))
            raise _ExecError("wrong number of args for %s: want %s got %d" % (name, want, len(values)), node)
        try:
            return self.funcs[name](*values)
        except (_FuncError, TypeError, ValueError, OverflowError) as e:
            raise _ExecError("error calling %s: %s" % (name, e), node)


def _text_of(node: _Node) -> str:
    if isinstance(node, _Literal):
        return go_quote(node.value) if isinstance(node.value, str) else _go_value(node.value)
    return {_Dot: ".", _Nil: "nil"}.get(type(node), "")


def _print_value(value: Any, node: _Node) -> str:
    if value is None or value is _MISSING:
        return "<no value>"
    if callable(value):
        raise _ExecError("can't print a function", node)
    return _go_value(value)


# -- Go's values ----------------------------------------------------------------------------------

def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def _sorted_keys(d: dict) -> list:
    try:
        return sorted(d)
    except TypeError:
        return sorted(d, key=str)


def _go_type(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if callable(value):
        return "func"
    return type(value).__name__


def _float_digits(x: float) -> "Tuple[str, str, int]":
    """(sign, shortest digits, decimal point position) of a finite float: 0.0125 -> ("", "125", -1)."""
    text = repr(x)
    sign = "-" if text.startswith("-") else ""
    mantissa, _, exp = text.lstrip("-").partition("e")
    whole, _, frac = mantissa.partition(".")
    digits, point = whole + frac, len(whole) + int(exp or 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if not digits:
        return sign, "0", 1
    return sign, digits, point


def _float_e(sign: str, digits: str, point: int, exp_digits: int = 2) -> str:
    exp = point - 1
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return "%s%se%s%0*d" % (sign, mant, "-" if exp < 0 else "+", exp_digits, abs(exp))


def _float_f(sign: str, digits: str, point: int) -> str:
    if point <= 0:
        return sign + "0." + "0" * -point + digits
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return sign + digits[:point] + "." + digits[point:]


def go_float(x: float) -> str:
    """Go's ``%v`` of a float64: shortest digits, an exponent from 1e+06 and below 1e-04."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    sign, digits, point = _float_digits(x)
    if digits == "0":
        return sign + "0"
    exp = point - 1
    if exp < -4 or exp >= 6:
        return _float_e(sign, digits, point)
    return _float_f(sign, digits, point)


def _go_value(value: Any) -> str:
    """Go's ``%v``: what ``{{.X}}`` prints for a value (nil inside is ``<nil>``)."""
    if value is None:
        return "<nil>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join("%s:%s" % (_go_value(k), _go_value(value[k]))
                                 for k in _sorted_keys(value) if not callable(value[k])) + "]"
    return str(value)


def go_print(value: Any) -> str:
    """What an action prints for ``value``: ``<no value>`` for nil, else Go's ``%v``."""
    return "<no value>" if value is None else _go_value(value)


class _Unencodable(Exception):
    pass


def go_json(value: Any) -> str:
    """Docker's ``json`` function: Go's encoder, compact, without HTML escaping; a dict's
    keys in their order (a struct's), callables left out (methods are not marshalled).
    What Go cannot encode (NaN, a function) gives "", as Docker ignores the encoder's error."""
    try:
        return _json_value(value)
    except _Unencodable:
        return ""


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _Unencodable()
        sign, digits, point = _float_digits(value)
        if digits != "0" and (abs(value) < 1e-6 or abs(value) >= 1e21):
            return _float_e(sign, digits, point, 1)  # Go's encoder: 1e-7, not fmt's 1e-07
        return _float_f(sign, digits, point)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join("%s:%s" % (_json_string(str(k)), _json_value(v))
                              for k, v in value.items() if not callable(v)) + "}"
    if callable(value):
        raise _Unencodable()
    return _json_string(str(value))


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
                 "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_SPECIAL = re.compile('["\\\\\x00-\x1f\u2028\u2029\ud800-\udfff]')


def _json_string(text: str) -> str:
    def escape(m):
        c = m.group()
        if c in _JSON_ESCAPES:
            return _JSON_ESCAPES[c]
        if "\ud800" <= c <= "\udfff":
            return "\ufffd"  # not UTF-8 (a surrogate escape): Go writes the replacement character
        return "\\u%04x" % ord(c)
    return '"' + _JSON_SPECIAL.sub(escape, text) + '"'


# -- fmt: print, println, printf ------------------------------------------------------------------

def go_sprint(*args: Any) -> str:
    """Go's fmt.Sprint: a space between two operands when neither is a string."""
    out = []
    for n, arg in enumerate(args):
        if n and not isinstance(arg, str) and not isinstance(args[n - 1], str):
            out.append(" ")
        out.append(_go_value(arg))
    return "".join(out)


def go_sprintln(*args: Any) -> str:
    return " ".join(_go_value(a) for a in args) + "\n"


_DIRECTIVE = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?(.?)", re.S)


def go_sprintf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf, with its inline complaints (``%!d(string=x)``, ``%!s(MISSING)``)."""
    out, pos, n = [], 0, 0
    while True:
        at = fmt.find("%", pos)
        if at < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:at])
        m = _DIRECTIVE.match(fmt, at)
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        pos = m.end()
        if not verb:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        if n >= len(args):
            out.append("%!" + verb + "(MISSING)")
            continue
        spec = _Spec(flags, int(width) if width else None, (int(prec) if prec else 0) if prec is not None else None)
        out.append(_fmt_arg(verb, spec, args[n]))
        n += 1
    if n < len(args):
        out.append("%!(EXTRA " + ", ".join("%s=%s" % (_go_type(a), _go_value(a)) for a in args[n:]) + ")")
    return "".join(out)


class _Spec:
    __slots__ = ("flags", "width", "prec")

    def __init__(self, flags: str, width: Optional[int], prec: Optional[int]):
        self.flags, self.width, self.prec = flags, width, prec

    def pad(self, text: str, numeric: bool = False) -> str:
        width = self.width
        if width is None or len(text) >= width:
            return text
        if "-" in self.flags:
            return text + " " * (width - len(text))
        if numeric and "0" in self.flags:
            sign = text[0] if text[:1] in "+- " and text[:1] else ""
            return sign + "0" * (width - len(text)) + text[len(sign):]
        return " " * (width - len(text)) + text

    def python(self, verb: str) -> str:
        """The same directive in Python's % syntax (for floats, whose % Go's matches)."""
        return "%" + self.flags + ("" if self.width is None else str(self.width)) + \
            ("" if self.prec is None else "." + str(self.prec)) + verb


def _bad_verb(verb: str, arg: Any) -> str:
    if arg is None:
        return "%!" + verb + "(<nil>)"
    return "%!" + verb + "(" + _go_type(arg) + "=" + _go_value(arg) + ")"


def _fmt_arg(verb: str, spec: _Spec, arg: Any) -> str:
    if isinstance(arg, (list, tuple)):  # Go formats each element with the verb
        return "[" + " ".join(_fmt_arg(verb, spec, a) for a in arg) + "]"
    if isinstance(arg, dict):
        return "map[" + " ".join(_fmt_arg(verb, spec, k) + ":" + _fmt_arg(verb, spec, arg[k])
                                 for k in _sorted_keys(arg) if not callable(arg[k])) + "]"
    if arg is None:
        return spec.pad("<nil>") if verb == "v" else _bad_verb(verb, arg)
    if isinstance(arg, bool):
        if verb in "vt":
            return spec.pad("true" if arg else "false")
        return _bad_verb(verb, arg)
    if isinstance(arg, int):
        return _fmt_int(verb, spec, arg)
    if isinstance(arg, float):
        return _fmt_float(verb, spec, arg)
    if isinstance(arg, str):
        return _fmt_str(verb, spec, arg)
    if verb == "v":
        return spec.pad(_go_value(arg))
    return _bad_verb(verb, arg)


_INT_BASES = {"v": ("d", ""), "d": ("d", ""), "x": ("x", "0x"), "X": ("X", "0X"), "o": ("o", "0"),
              "O": ("o", "0o"), "b": ("b", "0b")}


def _fmt_int(verb: str, spec: _Spec, n: int) -> str:
    if verb in _INT_BASES:
        base, prefix = _INT_BASES[verb]
        digits = format(abs(n), base)
        if spec.prec is not None:
            digits = "" if spec.prec == 0 and n == 0 else digits.rjust(spec.prec, "0")
        if verb != "O" and ("#" not in spec.flags or verb in "vd" or verb == "o" and digits.startswith("0")):
            prefix = ""
        sign = "-" if n < 0 else ("+" if "+" in spec.flags else (" " if " " in spec.flags else ""))
        text = sign + prefix + digits
        width = spec.width or 0
        if "0" in spec.flags and "-" not in spec.flags and spec.prec is None and len(text) < width:
            return sign + prefix + "0" * (width - len(text)) + digits
        return spec.pad(text)
    if verb == "c":
        return spec.pad(chr(n) if 0 <= n <= 0x10FFFF else "\ufffd")
    if verb == "q":
        c = chr(n) if 0 <= n <= 0x10FFFF else "\ufffd"
        return spec.pad("'" + go_quote(c)[1:-1].replace('\\"', '"').replace("'", "\\'") + "'")
    if verb == "U":
        return spec.pad("U+%04X" % n)
    if verb in "eEfFgG":
        return _fmt_float(verb, spec, float(n))  # rootless: an int where Go's JSON gives a float64
    return _bad_verb(verb, n)


def _fmt_float(verb: str, spec: _Spec, x: float) -> str:
    if verb in "vgG" and spec.prec is None:
        text = go_float(x)
        if verb == "G":
            text = text.upper().replace("INF", "Inf").replace("NAN", "NaN")
        if "+" in spec.flags and not text.startswith(("-", "+")):
            text = "+" + text
        elif " " in spec.flags and not text.startswith(("-", "+")):
            text = " " + text
        return spec.pad(text, numeric=True)
    if verb in "eEfFgG":
        if x != x or x in (float("inf"), float("-inf")):
            return spec.pad(go_float(x))
        return spec.python(verb.lower() if verb == "F" else verb) % x
    if verb == "v":
        return spec.python("g") % x
    return _bad_verb(verb, x)


def _fmt_str(verb: str, spec: _Spec, s: str) -> str:
    if verb == "v" and "#" in spec.flags:
        return spec.pad(go_quote(s))
    if verb in "vs":
        return spec.pad(s if spec.prec is None else s[:spec.prec])
    if spec.prec is not None:
        s = s[:spec.prec]
    if verb == "q":
        if "#" in spec.flags and "`" not in s and all(c.isprintable() or c == "\t" for c in s):
            return spec.pad("`" + s + "`")
        quoted = go_quote(s)
        if "+" in spec.flags:
            quoted = "".join(c if ord(c) < 0x80 else ("\\u%04x" % ord(c) if ord(c) < 0x10000 else "\\U%08x" % ord(c))
                             for c in quoted)
        return spec.pad(quoted)
    if verb in "xX":
        data = s.encode("utf-8", "surrogateescape")
        pattern = "%02x" if verb == "x" else "%02X"
        sep = " " if " " in spec.flags else ""
        prefix = ("0x" if verb == "x" else "0X") if "#" in spec.flags else ""
        text = sep.join(prefix + pattern % b for b in data) if sep else prefix + "".join(pattern % b for b in data)
        return spec.pad(text)
    return _bad_verb(verb, s)


# -- the functions --------------------------------------------------------------------------------

def _string(value: Any, what: str = "value") -> str:
    """A string argument: strings as they are, other scalars printed as Go would."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (dict, list, tuple)) or callable(value):
        raise _FuncError("wrong type for %s; expected string; got %s" % (what, _go_type(value)))
    return _go_value(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise _FuncError("wrong type for value; expected int; got %s" % _go_type(value))
    return int(value)


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if item is None:
            return ""  # a struct's nil map: Go gives the zero value
        if isinstance(item, dict):
            if isinstance(key, (list, tuple, dict)):
                raise _FuncError("value has type %s; should be string" % _go_type(key))
            item = item.get(key, "")  # a missing key: the zero value, "" for Docker's string maps
        elif isinstance(item, (list, tuple, str)):
            i = _int_index(key)
            if not 0 <= i < len(item):
                raise _FuncError("index out of range: %d" % i)
            item = item[i]
        else:
            raise _FuncError("can't index item of type %s" % _go_type(item))
    return item


def _int_index(key: Any) -> int:
    if isinstance(key, bool) or not isinstance(key, int):
        raise _FuncError("cannot index slice/array with type %s" % _go_type(key))
    return key


def _slice(item: Any, *bounds: Any) -> Any:
    if item is None:
        raise _FuncError("slice of untyped nil")
    if not isinstance(item, (list, tuple, str)):
        raise _FuncError("can't slice item of type %s" % _go_type(item))
    if len(bounds) > 3:
        raise _FuncError("too many slice indexes: %d" % len(bounds))
    if len(bounds) == 3 and isinstance(item, str):
        raise _FuncError("cannot 3-index slice a string")
    idx = [_int_index(b) for b in bounds]
    cap = len(item)
    for i in idx:
        if not 0 <= i <= cap:
            raise _FuncError("index out of range: %d" % i)
    start = idx[0] if idx else 0
    end = idx[1] if len(idx) > 1 else len(item)
    if start > end or len(idx) == 3 and end > idx[2]:
        raise _FuncError("invalid slice index: %d > %d" % ((start, end) if start > end else (end, idx[2])))
    return item[start:end]


def _len(item: Any) -> int:
    if item is None:
        return 0
    if isinstance(item, (str, list, tuple, dict)):
        return len(item)
    raise _FuncError("len of type %s" % _go_type(item))


def _kind(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise _FuncError("missing argument for comparison")
    for b in others:
        ka, kb = _kind(a), _kind(b)
        if "nil" in (ka, kb):
            if ka == kb:
                return True
            continue
        if ka != kb:
            raise _FuncError("incompatible types for comparison")
        if ka == "other":
            raise _FuncError("non-comparable type %s: %s" % (_go_value(a), _go_type(a)))
        if a == b:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka not in ("number", "string") or kb not in ("number", "string"):
        raise _FuncError("invalid type for comparison")
    if ka != kb:
        raise _FuncError("incompatible types for comparison")
    return a < b


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _eval_args(args) -> str:
    """Go's evalArgs for html, js and urlquery: one string as it is, else Sprint."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return go_sprint(*args)


_HTML = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}


def _html(*args: Any) -> str:
    return "".join(_HTML.get(c, c) for c in _eval_args(args))


_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def _js(*args: Any) -> str:
    out = []
    for c in _eval_args(args):
        if c in _JS:
            out.append(_JS[c])
        elif c < " ":
            out.append("\\u%04X" % ord(c))
        elif ord(c) >= 0x80 and not c.isprintable():
            out.append("\\u%04X" % ord(c))
        else:
            out.append(c)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus
    return quote_plus(_eval_args(args), safe="")


def _not(value: Any) -> bool:
    return not truth(value)


def _json(value: Any) -> str:
    return go_json(value)


def _split(s: Any, sep: Any) -> List[str]:
    s, sep = _string(s), _string(sep)
    return list(s) if sep == "" else s.split(sep)


def _join(items: Any, sep: Any) -> str:
    if items is None:
        return ""
    if not isinstance(items, (list, tuple)):
        raise _FuncError("wrong type for value; expected []string; got %s" % _go_type(items))
    return _string(sep).join(_string(i) for i in items)


def _is_separator(c: str) -> bool:
    if c < "\x80":
        return not (c.isalnum() or c == "_")
    if c.isalpha() or c.isdigit():
        return False
    return c.isspace()


def _title(s: Any) -> str:
    """Go's strings.Title: the first letter of each word upper-cased, the rest left alone."""
    out, prev = [], " "
    for c in _string(s):
        out.append(c.upper() if _is_separator(prev) and len(c.upper()) == 1 else c)
        prev = c
    return "".join(out)


def _lower(s: Any) -> str:
    return _string(s).lower()


def _upper(s: Any) -> str:
    return _string(s).upper()


def _pad(s: Any, prefix: Any, suffix: Any) -> str:
    s, prefix, suffix = _string(s), _int(prefix), _int(suffix)
    if prefix < 0 or suffix < 0:
        raise _FuncError("negative repeat count")
    return " " * prefix + s + " " * suffix if s else s


def _truncate(s: Any, length: Any) -> str:
    s, length = _string(s), _int(length)
    if length < 0:
        raise _FuncError("slice bounds out of range [:%d]" % length)
    return s[:length]


def _printf(fmt: Any, *args: Any) -> str:
    return go_sprintf(_string(fmt, "format"), *args)


FUNCS = {
    "and": None, "or": None,  # evaluated lazily by _Run.call, as Go's
    "not": _not, "len": _len, "index": _index, "slice": _slice,
    "print": go_sprint, "printf": _printf, "println": go_sprintln,
    "eq": _eq, "ne": _ne, "lt": _lt, "le": _le, "gt": _gt, "ge": _ge,
    "html": _html, "js": _js, "urlquery": _urlquery,
    "json": _json, "split": _split, "join": _join, "title": _title, "lower": _lower, "upper": _upper,
    "pad": _pad, "truncate": _truncate,
}  # type: Dict[str, Any]

_ARITY = {
    "and": (1, None), "or": (1, None), "not": (1, 1), "len": (1, 1), "index": (1, None), "slice": (1, None),
    "print": (0, None), "printf": (1, None), "println": (0, None),
    "eq": (1, None), "ne": (2, 2), "lt": (2, 2), "le": (2, 2), "gt": (2, 2), "ge": (2, 2),
    "html": (0, None), "js": (0, None), "urlquery": (0, None),
    "json": (1, 1), "split": (2, 2), "join": (2, 2), "title": (1, 1), "lower": (1, 1), "upper": (1, 1),
    "pad": (3, 3), "truncate": (2, 2),
}
