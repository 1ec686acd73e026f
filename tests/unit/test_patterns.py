"""Each Pattern's plain shortcut agrees with its regular expression: a word of its plain
characters within its limit matches the expression too; other words go to the expression."""

import itertools
import random
import re

import pytest

from rootless import patterns
from rootless.bundle import create, mounts
from rootless.image import reference

OURS = {name: p for module in (reference, mounts, create) for name, p in vars(module).items()
        if isinstance(p, patterns.Pattern)}


def test_ours_are_found():
    assert {"_COMPONENT", "_TAG", "_LABEL", "_PORT", "VOLUME_NAME", "_COUNT", "_NAME"} <= set(OURS)


@pytest.mark.parametrize("name", sorted(OURS))
def test_plain_words_match_the_expression(name):
    pattern = OURS[name]
    compiled = re.compile(pattern.source)
    alphabet = sorted(pattern.plain) or ["a"]
    rng = random.Random(name)
    lengths = [1, 2, 3, 5, 63, 64, 127, 128, 129, 300]
    for length in lengths:
        for _ in range(20):
            word = "".join(rng.choice(alphabet) for _ in range(length))
            assert pattern.match(word) == bool(compiled.match(word)), (name, word)


@pytest.mark.parametrize("name", sorted(OURS))
def test_other_words_are_matched_by_the_expression(name):
    pattern = OURS[name]
    compiled = re.compile(pattern.source)
    for word in ("", "a-b", "a..b", "-x", "x\n", "ab\n", "A", "1", "12345", "123456", "sha256:" + "a" * 64,
                 "[::1]", "a_b", "a__b", "UPPER", "+5", "-5", "07777", "0777", "/name", "na me") + tuple(
                 "".join(p) for p in itertools.product("a-_.", repeat=3)):
        assert pattern.match(word) == bool(compiled.match(word)), (name, word)


def test_a_trailing_newline_is_refused_as_docker_refuses_it():
    assert not mounts.VOLUME_NAME.match("data\n")
    assert mounts.VOLUME_NAME.match("data")
