"""Integers in query strings and headers: ASCII digits only, bounded before they reach Python or the database.

``str.isdigit`` accepts '²' and '٣', which ``int`` then refuses, and an unbounded digit string overflows a
BIGINT column: both used to end in a 500.
"""

from __future__ import annotations

MAX_BIGINT = 2**63 - 1


def ascii_int(raw: str, *, minimum: int = 0, maximum: int = MAX_BIGINT) -> int | None:
    """The value of ``raw`` when it is plain ASCII digits within [minimum, maximum]; otherwise None."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(maximum)):
        return None
    value = int(raw)
    return value if minimum <= value <= maximum else None
