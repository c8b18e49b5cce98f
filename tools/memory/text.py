"""Words, relevance and snippets for ``memory_search``: one definition for every database.

A word is a run of letters and digits (``_`` and punctuation separate words), compared
case-folded after NFC normalisation and cut to ``MAX_WORD_LENGTH`` characters. A document's
words are those of its path and its content. A query matches a document when every query
word occurs in it, anywhere. The score is Okapi BM25 (k1 = 1.2, b = 0.75, idf
``ln(1 + (N - df + 0.5) / (df + 0.5))``) over the organization's own documents only, rounded to
``SCORE_DECIMALS`` decimals: higher is better, and equal scores are ordered by path.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from itertools import islice

MAX_WORD_LENGTH = 64
MAX_QUERY_WORDS = 32
SCORE_DECIMALS = 3
K1, B = 1.2, 0.75
SNIPPET_WORDS = 16
SNIPPET_LEAD = 4
HIT_START, HIT_END = "**", "**"
_WORD = re.compile(r"[^\W_]+")


def _key(word: str) -> str:
    """A word of NFC-normalised text as it is indexed and compared."""
    return word.casefold()[:MAX_WORD_LENGTH]


def words(text: str) -> list[str]:
    return [_key(match.group()) for match in _WORD.finditer(unicodedata.normalize("NFC", text))]


def query_words(query: str) -> list[str]:
    """The distinct words of a query, in order, at most ``MAX_QUERY_WORDS``."""
    return list(dict.fromkeys(words(query)))[:MAX_QUERY_WORDS]


def document_words(path: str, content: str) -> tuple[Counter[str], int]:
    """How often each word occurs in the document (path and content), and how many words it has."""
    found = words(path) + words(content)
    return Counter(found), len(found)


def bm25(
    counts: Mapping[str, int], length: int, document_frequency: Mapping[str, int], documents: int, average: float
) -> float:
    score = 0.0
    for word, count in counts.items():
        frequency = document_frequency[word]
        idf = math.log(1 + (documents - frequency + 0.5) / (frequency + 0.5))
        score += idf * count * (K1 + 1) / (count + K1 * (1 - B + B * length / (average or 1)))
    return round(score, SCORE_DECIMALS)


def snippet(content: str, wanted: Iterable[str]) -> str:
    """About ``SNIPPET_WORDS`` words of the content around the first hit, hits marked ``**like this**``.
    Reads the content only as far as the window (a document may hold 256 KiB)."""
    text = unicodedata.normalize("NFC", content)
    wanted = set(wanted)
    found = _WORD.finditer(text)
    before: deque[re.Match[str]] = deque(maxlen=SNIPPET_LEAD)
    skipped = False
    window: list[re.Match[str]] = []
    for match in found:
        if _key(match.group()) in wanted:
            window = [*before, match]
            break
        skipped = skipped or len(before) == SNIPPET_LEAD
        before.append(match)
    else:  # no hit in the content (the path matched): the first words
        skipped, found = False, _WORD.finditer(text)
    window.extend(islice(found, SNIPPET_WORDS + 1 - len(window)))
    more = len(window) > SNIPPET_WORDS
    window = window[:SNIPPET_WORDS]
    if not window:
        return ""
    parts: list[str] = ["…" if skipped else ""]
    cursor = window[0].start()
    for match in window:
        word = match.group()
        parts += [text[cursor : match.start()], f"{HIT_START}{word}{HIT_END}" if _key(word) in wanted else word]
        cursor = match.end()
    parts.append("…" if more else "")
    return " ".join("".join(parts).split())
