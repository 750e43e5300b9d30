"""Counted nouns for a plugin's messages: "1 key", "2 keys", "0 entries".

The rules of the host's `backout::text::count`, so a plugin's summaries read
like backout's own lines. Regular English plurals only: a plugin that counts
a noun with an irregular plural writes both forms itself.
"""

import re

_CONSONANT_Y = re.compile(r"[^aeiou]y$")
_SIBILANT = ("s", "x", "z", "ch", "sh")


def count(n, noun):
    """`n` and the noun, plural unless `n` is 1: `count(1, "key")` is
    "1 key", `count(2, "entry")` is "2 entries", `count(0, "match")` is
    "0 matches"."""
    return f"{n} {noun if n == 1 else plural(noun)}"


def plural(noun):
    """The plural of an English noun by the regular rules: `entry` →
    `entries`, `key` → `keys`, `match` → `matches`."""
    if _CONSONANT_Y.search(noun):
        return noun[:-1] + "ies"
    if noun.endswith(_SIBILANT):
        return noun + "es"
    return noun + "s"
