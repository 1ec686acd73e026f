"""Docker-style generated container names: ``adjective_surname``.

The surnames are of scientists and engineers, as in Docker; the lists are our own. A name
already taken gets a digit appended, as Docker does on a collision.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Callable

ADJECTIVES = (
    "admiring", "agile", "amazing", "bold", "brave", "busy", "calm", "careful", "clever",
    "cool", "curious", "daring", "eager", "elated", "epic", "fervent", "focused", "friendly",
    "gallant", "gentle", "happy", "hardy", "humble", "jolly", "keen", "kind", "lucid",
    "magical", "modest", "nifty", "noble", "patient", "pensive", "quiet", "quirky", "relaxed",
    "serene", "sharp", "silly", "steady", "stoic", "sweet", "tender", "upbeat", "vibrant",
    "wise", "witty", "youthful", "zealous", "zen",
)
SURNAMES = (
    "agnesi", "babbage", "bardeen", "bohr", "boole", "cannon", "carson", "cori", "curie",
    "darwin", "dijkstra", "einstein", "euler", "faraday", "fermi", "feynman", "franklin",
    "gauss", "goldberg", "hamilton", "hawking", "heisenberg", "hodgkin", "hopper", "hypatia",
    "jemison", "johnson", "kepler", "knuth", "lamarr", "lovelace", "maxwell", "meitner",
    "mendel", "newton", "noether", "pascal", "planck", "ritchie", "shannon", "somerville",
    "tesla", "thompson", "torvalds", "turing", "volta", "wescoff", "wilson", "wozniak", "yalow",
)


class _Urandom:
    """The two calls of ``random`` that names need, from os.urandom: importing random
    (with hashlib's sha512 and math) costs every ``run`` without --name ~1 ms."""

    @staticmethod
    def _below(n: int) -> int:
        return int.from_bytes(os.urandom(4), "little") % n

    def choice(self, seq):
        return seq[self._below(len(seq))]

    def randint(self, a: int, b: int) -> int:
        return a + self._below(b - a + 1)


def generate(taken: Callable[[str], bool], rng=_Urandom()) -> str:
    """A free name; ``taken(name)`` says whether a container already has it."""
    for attempt in range(100):
        name = "%s_%s" % (rng.choice(ADJECTIVES), rng.choice(SURNAMES))
        if attempt >= 10:
            name += str(rng.randint(1, 99))
        if not taken(name):
            return name
    raise RuntimeError("no free container name found")
