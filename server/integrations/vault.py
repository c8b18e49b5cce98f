"""Credentials at rest: AES-256-GCM under a data key, the organization id as associated data.

A sealed credential is ``nonce (12 bytes) || ciphertext+tag``; the row keeps the id of the data key
that sealed it, so ``capgate secrets rotate`` can re-seal rows under a new key while old rows still
open. The data key comes from ``CAPGATE_SECRET_KEY`` (base64 of 32 bytes, or ``id:base64`` entries
separated by commas, the first one current), else from ``data_dir/secret-keys`` generated once (0600).
A credential is opened only to hand it to an upstream; it is never logged or returned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEYS_FILE = "secret-keys"
NONCE_BYTES = 12


class VaultError(Exception):
    """A credential cannot be sealed or opened (unknown key id, tampered row, bad key material)."""


@dataclass(frozen=True, slots=True)
class DataKey:
    id: str
    material: bytes = field(repr=False)

    @classmethod
    def parse(cls, entry: str) -> DataKey:
        entry = entry.strip()
        key_id, _, encoded = entry.rpartition(":")
        try:
            material = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise VaultError("a secret key must be base64 of 32 bytes") from None
        if len(material) != 32:
            raise VaultError("a secret key must be base64 of 32 bytes")
        # A key given without an id is named by a digest of itself, so the same key always has the same id.
        return cls(id=key_id or "k" + hashlib.sha256(material).hexdigest()[:10], material=material)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(id="k" + secrets.token_hex(5), material=AESGCM.generate_key(bit_length=256))

    def entry(self) -> str:
        return f"{self.id}:{base64.b64encode(self.material).decode()}"


class Vault:
    """Seals and opens credentials; ``keys[0]`` is the current key, the others open older rows."""

    def __init__(self, keys: list[DataKey]) -> None:
        if not keys:
            raise VaultError("no data key")
        self.keys = keys
        self._by_id = {key.id: AESGCM(key.material) for key in keys}

    @property
    def current_key_id(self) -> str:
        return self.keys[0].id

    def seal(self, organization_id: str, credential: str) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._by_id[self.current_key_id].encrypt(nonce, credential.encode(), organization_id.encode())
        return self.current_key_id, nonce + sealed

    def open(self, organization_id: str, key_id: str, sealed: bytes) -> str:
        cipher = self._by_id.get(key_id)
        if cipher is None:
            raise VaultError(f"credential sealed under unknown data key {key_id}")
        try:
            plain = cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], organization_id.encode())
        except InvalidTag:
            raise VaultError("credential does not open (tampered, or moved to another organization)") from None
        return plain.decode()


def load_vault(data_dir: Path, configured: str | None) -> Vault:
    if configured:
        return Vault([DataKey.parse(entry) for entry in configured.split(",") if entry.strip()])
    path = data_dir / KEYS_FILE
    if not path.exists():
        _write_keys_file(path, [DataKey.generate()], exclusive=True)
    return Vault([DataKey.parse(line) for line in path.read_text().splitlines() if line.strip()])


def add_key_to_file(data_dir: Path) -> Vault:
    """A new current key in ``data_dir/secret-keys``; the older keys stay so older rows still open."""
    vault = load_vault(data_dir, None)
    _write_keys_file(data_dir / KEYS_FILE, [DataKey.generate(), *vault.keys], exclusive=False)
    return load_vault(data_dir, None)


def _write_keys_file(path: Path, keys: list[DataKey], *, exclusive: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside with 0600, then moved (or linked, when only the first starter may win) into place.
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(key.entry() + "\n" for key in keys))
    try:
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
