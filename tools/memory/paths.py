"""Memory paths: absolute, normalised (NFC, so one name has one spelling), and unable to escape
or smuggle anything: no control, invisible or bidirectional formatting characters."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

MAX_PATH_LENGTH = 512
MAX_DEPTH = 16
MAX_SEGMENT_LENGTH = 128


# Control (Cc), format — zero-width, bidi, BOM, soft hyphen — (Cf), surrogate, private-use, unassigned,
# line/paragraph separators; any space but U+0020; and letters that render as nothing.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _is_hidden(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in _REFUSED_CATEGORIES or (category == "Zs" and ch != " ") or ch in _BLANK_LETTERS


def normalise_path(raw: str, *, allow_root: bool = False) -> str:
    """``/topics//x.md/`` → ``/topics/x.md``; raises ValueError naming the problem."""
    if not raw.startswith("/"):
        raise ValueError("path must be absolute (start with /)")
    if any(_is_hidden(ch) for ch in raw):
        raise ValueError("path must not contain NUL, control, invisible or bidirectional formatting characters")
    raw = unicodedata.normalize("NFC", raw)
    if "\\" in raw:
        raise ValueError("path must not contain backslashes")
    segments = [segment for segment in raw.split("/") if segment]
    if any(segment in (".", "..") for segment in segments):
        raise ValueError("path must not contain . or .. segments")
    if any(segment != segment.strip() for segment in segments):
        raise ValueError("path segments must not start or end with whitespace")
    if len(segments) > MAX_DEPTH:
        raise ValueError(f"path must be at most {MAX_DEPTH} levels deep")
    if any(len(segment) > MAX_SEGMENT_LENGTH for segment in segments):
        raise ValueError(f"path segments must be at most {MAX_SEGMENT_LENGTH} characters")
    path = "/" + "/".join(segments)
    if len(path) > MAX_PATH_LENGTH:
        raise ValueError(f"path must be at most {MAX_PATH_LENGTH} characters")
    if path == "/" and not allow_root:
        raise ValueError("path must name a document, not /")
    return path


def _document(raw: str) -> str:
    return normalise_path(raw)


def _directory(raw: str) -> str:
    return normalise_path(raw, allow_root=True)


DocumentPath = Annotated[str, AfterValidator(_document)]
DirectoryPath = Annotated[str, AfterValidator(_directory)]
