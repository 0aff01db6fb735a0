"""The dashboard's password, stored only as a salted PBKDF2-SHA256 hash (standard library).

The config holds ``pbkdf2_sha256$<iterations>$<salt, base64>$<hash, base64>``, the layout
Django and passlib use, so a leaked ``config.ini`` does not give the password away; the
iterations travel with the hash so a later kit can raise them without breaking old configs.
Comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

SCHEME = "pbkdf2_sha256"
#: 0.14 s of one x86 core here (measured with hashlib); several times that on a Pi Zero 2 W.
#: The dashboard verifies a browser's password once and remembers it, so this is paid per
#: login, not per request.
ITERATIONS = 200_000
MIN_ITERATIONS = 10_000


class PasswordHashError(ValueError):
    """A ``password_hash`` that is not one this module wrote."""


@dataclass(frozen=True)
class PasswordHash:
    iterations: int
    salt: bytes
    digest: bytes

    def text(self) -> str:
        enc = base64.b64encode
        return f"{SCHEME}${self.iterations}${enc(self.salt).decode()}${enc(self.digest).decode()}"

    def matches(self, password: str) -> bool:
        got = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), self.salt,
                                  self.iterations, len(self.digest))
        return hmac.compare_digest(got, self.digest)


def make_hash(password: str, iterations: int = ITERATIONS) -> PasswordHash:
    if not password:
        raise PasswordHashError("the password is empty")
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, 32)
    return PasswordHash(iterations, salt, digest)


def parse_hash(text: str) -> PasswordHash:
    """The stored hash, checked: a hand-typed password in its place is refused with how to
    make the hash, rather than never matching."""
    parts = text.strip().split("$")
    how = "make one with: edgebird-dashboard --hash-password"
    if len(parts) != 4 or parts[0] != SCHEME:
        raise PasswordHashError(f"not a {SCHEME}$iterations$salt$hash line ({how}; the "
                                "password itself never goes in the config)")
    try:
        iterations = int(parts[1])
        salt = base64.b64decode(parts[2], validate=True)
        digest = base64.b64decode(parts[3], validate=True)
    except (ValueError, binascii.Error):
        raise PasswordHashError(f"the hash is damaged ({how})") from None
    if iterations < MIN_ITERATIONS or len(salt) < 8 or len(digest) < 16:
        raise PasswordHashError(f"too weak: at least {MIN_ITERATIONS} iterations, an 8-byte "
                                f"salt and a 16-byte hash ({how})")
    return PasswordHash(iterations, salt, digest)
