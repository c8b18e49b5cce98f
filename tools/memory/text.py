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
from collections import Counter
from collections.abc import Iterable, Mapping

MAX_WORD_LENGTH = 64
MAX_QUERY_WORDS = 32
SCORE_DECIMALS = 3
K1, B = 1.2, 0.75
SNIPPET_WORDS = 16
SNIPPET_LEAD = 4
HIT_START, HIT_END = "**", "**"
_WORD = re.compile(r"[^\W_]+")


def _key(word: str) -> str:
    return unicodedata.normalize("NFC", word).casefold()[:MAX_WORD_LENGTH]


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
    """About ``SNIPPET_WORDS`` words of the content around the first hit, hits marked ``**like this**``."""
    text = unicodedata.normalize("NFC", content)
    wanted = set(wanted)
    spans = [(match.start(), match.end(), _key(match.group()) in wanted) for match in _WORD.finditer(text)]
    if not spans:
        return ""
    first = next((index for index, (_, _, hit) in enumerate(spans) if hit), 0)
    start = max(0, min(first - SNIPPET_LEAD, len(spans) - SNIPPET_WORDS))
    window = spans[start : start + SNIPPET_WORDS]
    parts: list[str] = ["…" if start > 0 else ""]
    cursor = window[0][0]
    for begin, end, hit in window:
        parts.append(text[cursor:begin])
        parts.append(f"{HIT_START}{text[begin:end]}{HIT_END}" if hit else text[begin:end])
        cursor = end
    parts.append("…" if start + SNIPPET_WORDS < len(spans) else "")
    return " ".join("".join(parts).split())
