"""Memory paths: absolute, normalised, and unable to escape or smuggle anything."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

MAX_PATH_LENGTH = 512
MAX_DEPTH = 16
MAX_SEGMENT_LENGTH = 128


def _has_control_characters(text: str) -> bool:
    return any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 or ch in "\u2028\u2029" for ch in text)


def normalise_path(raw: str, *, allow_root: bool = False) -> str:
    """``/topics//x.md/`` → ``/topics/x.md``; raises ValueError naming the problem."""
    if not raw.startswith("/"):
        raise ValueError("path must be absolute (start with /)")
    if _has_control_characters(raw):
        raise ValueError("path must not contain NUL or other control characters")
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
