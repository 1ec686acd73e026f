"""Detach keys (rootless.runtime.terminal): Docker's --detach-keys format and the scanner
that finds the sequence in typed input, chunk by chunk. Pure: no terminal needed."""

import pytest

from rootless.errors import UsageError
from rootless.runtime.terminal import DEFAULT_DETACH_KEYS, DetachScanner, detach_keys


@pytest.mark.parametrize("text, keys", [
    (None, b"\x10\x11"),  # ctrl-p ctrl-q, Docker's default
    ("", b"\x10\x11"),
    ("ctrl-x,y", b"\x18y"),
    ("ctrl-a", b"\x01"),
    ("ctrl-z", b"\x1a"),
    ("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", b"\x00\x1b\x1c\x1d\x1e\x1f"),
    ("a,b,c", b"abc"),
    ("Q", b"Q"),  # one character stands for itself, whatever it is
    ("-", b"-"),
])
def test_docker_format(text, keys):
    assert detach_keys(text) == keys


@pytest.mark.parametrize("text", [
    "ctrl-1", "ctrl-A", "CTRL-a", "ctrl-", "ctrl-ab", "shift-a", "ab", "a,,b", ",", "ctrl-p,", "é",
])
def test_docker_refusals(text):
    with pytest.raises(UsageError) as refused:
        detach_keys(text)
    assert str(refused.value) == "Invalid detach keys (%s) provided" % text


def feed_all(scanner, chunks):
    """What the scanner passes on for each chunk, and whether it detached."""
    out = []
    for chunk in chunks:
        data, done = scanner.feed(chunk)
        out.append(data)
        if done:
            return out, True
    return out, False


def test_plain_input_passes_through_untouched():
    scanner = DetachScanner(DEFAULT_DETACH_KEYS)
    assert feed_all(scanner, [b"ls -l\r", b"exit\r"]) == ([b"ls -l\r", b"exit\r"], False)


def test_the_sequence_in_one_chunk_keeps_what_came_before_and_drops_what_came_after():
    scanner = DetachScanner(b"\x10\x11")
    assert scanner.feed(b"echo hi\r\x10\x11after") == (b"echo hi\r", True)


def test_a_prefix_is_held_until_it_completes():
    scanner = DetachScanner(b"\x10\x11")
    assert scanner.feed(b"ab\x10") == (b"ab", False)
    assert scanner.feed(b"\x11") == (b"", True)


def test_a_prefix_that_breaks_is_sent_with_what_broke_it():
    scanner = DetachScanner(b"\x10\x11")
    assert scanner.feed(b"\x10") == (b"", False)
    assert scanner.feed(b"x") == (b"\x10x", False)
    assert scanner.feed(b"y") == (b"y", False)


def test_a_repeated_first_key_restarts_the_match():
    scanner = DetachScanner(b"\x10\x11")
    assert scanner.feed(b"\x10") == (b"", False)
    assert scanner.feed(b"\x10") == (b"\x10", False)  # the first is sent, the second held
    assert scanner.feed(b"\x11") == (b"", True)


def test_overlapping_sequences_are_found():
    scanner = DetachScanner(b"aab")
    assert scanner.feed(b"aaab") == (b"a", True)
    assert DetachScanner(b"abac").feed(b"ababac") == (b"ab", True)
    scanner = DetachScanner(b"abab")
    assert feed_all(scanner, [b"aba", b"c", b"abab"]) == ([b"", b"abac", b""], True)


def test_three_keys_one_byte_at_a_time():
    scanner = DetachScanner(b"\x18yz")
    assert feed_all(scanner, [b"\x18", b"y", b"x"]) == ([b"", b"", b"\x18yx"], False)
    assert feed_all(scanner, [b"\x18", b"y", b"z", b"never"]) == ([b"", b"", b""], True)


def test_flush_gives_up_the_held_prefix():
    scanner = DetachScanner(b"\x10\x11")
    assert scanner.feed(b"abc\x10") == (b"abc", False)
    assert scanner.flush() == b"\x10"
    assert scanner.flush() == b""
    assert scanner.feed(b"\x11") == (b"\x11", False)  # nothing held any more


def test_one_key_sequence_and_none():
    assert DetachScanner(b"q").feed(b"abqcd") == (b"ab", True)
    assert DetachScanner(b"").feed(b"\x10\x11") == (b"\x10\x11", False)  # off
