"""Regular expressions compiled when first used, and a shortcut that needs none.

``re`` (with ``enum``) costs ~2.5 ms to import, and ``run busybox`` needs a pattern only to
check words that are plainly good: an image name of lowercase letters and digits, say.
So a Pattern may name the characters of such plain words (``plain``, with a length
limit): a word made only of them matches without ``re``; any other is matched by the
regular expression, imported and compiled then. Whoever gives ``plain`` vouches that
every non-empty word of those characters within the limit matches the expression
(tests/unit/test_patterns.py checks each of ours).
"""


class Pattern:
    __slots__ = ("source", "plain", "limit", "compiled")

    def __init__(self, source: str, plain: str = "", limit: int = 1 << 30) -> None:
        self.source, self.plain, self.limit, self.compiled = source, frozenset(plain), limit, None

    def match(self, text: str) -> bool:
        if self.plain and 0 < len(text) <= self.limit and self.plain.issuperset(text):
            return True
        if self.compiled is None:
            import re
            self.compiled = re.compile(self.source)
        return self.compiled.match(text) is not None


LOWER_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789"
ALNUM = LOWER_DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
