"""The API key format: ``cg_live_`` + 12-char key id + 32-char secret + 6-char CRC32.

Everything here is pure and I/O free, so a string with a bad shape or checksum is
rejected before any lookup or hashing happens.
"""

from __future__ import annotations

import secrets
import zlib
from dataclasses import dataclass
from typing import Literal

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_SET = frozenset(BASE62)

Mode = Literal["live", "test"]
PREFIXES: dict[str, Mode] = {"cg_live_": "live", "cg_test_": "test"}
PREFIX_LENGTH = 8
KEY_ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = PREFIX_LENGTH + KEY_ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH
DISPLAY_PREFIX_LENGTH = 12


@dataclass(frozen=True, slots=True)
class ParsedKey:
    mode: Mode
    key_id: str
    raw: str

    @property
    def display_prefix(self) -> str:
        return self.raw[:DISPLAY_PREFIX_LENGTH]

    def __repr__(self) -> str:  # never let a secret reach a log through repr()
        return f"ParsedKey(mode={self.mode!r}, key_id={self.key_id!r})"


_UNIFORM_BYTES = 4 * len(BASE62)  # 248: bytes below it map onto the 62 characters evenly


def random_base62(length: int) -> str:
    """Uniform random base62 from the OS CSPRNG, by rejection sampling of whole bytes.

    One ``token_bytes`` call instead of one ``secrets.choice`` (a urandom read) per character:
    ids are drawn on every tool call.
    """
    chars: list[str] = []
    while len(chars) < length:
        chars.extend(BASE62[byte % 62] for byte in secrets.token_bytes(length + 8) if byte < _UNIFORM_BYTES)
    return "".join(chars[:length])


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode("ascii"))
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, rest = divmod(value, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits))


def format_key(mode: Mode, key_id: str, secret: str) -> str:
    body = f"cg_{mode}_{key_id}{secret}"
    return body + _checksum(body)


def generate_key(mode: Mode = "live") -> ParsedKey:
    key_id = random_base62(KEY_ID_LENGTH)
    raw = format_key(mode, key_id, random_base62(SECRET_LENGTH))
    return ParsedKey(mode=mode, key_id=key_id, raw=raw)


def parse_key(candidate: str) -> ParsedKey | None:
    """The parsed key, or None when the string is not a well-formed capgate key."""
    if len(candidate) != KEY_LENGTH:
        return None
    mode = PREFIXES.get(candidate[:PREFIX_LENGTH])
    if mode is None:
        return None
    body, checksum = candidate[:-CHECKSUM_LENGTH], candidate[-CHECKSUM_LENGTH:]
    if not _BASE62_SET.issuperset(candidate[PREFIX_LENGTH:]):
        return None
    if not secrets.compare_digest(_checksum(body), checksum):
        return None
    return ParsedKey(mode=mode, key_id=candidate[PREFIX_LENGTH : PREFIX_LENGTH + KEY_ID_LENGTH], raw=candidate)
