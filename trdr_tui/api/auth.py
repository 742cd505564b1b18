"""The API's bearer token: generated on first start, kept in a file only its owner can read.

`load_or_create_token(path)` returns the token (43 URL-safe characters, 256 bits from `secrets`),
creating the file with mode 0600 when it does not exist. `token_matches` compares in constant time
(`hmac.compare_digest`). The token never appears in a response, a log line or the database.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from trdr_tui.core.errors import ConfigError


def load_or_create_token(path: Path) -> str:
    """The token stored at `path`, or a new one written there (0600). Raises ConfigError when the file
    can be read by others (like a key file) or is empty."""
    path = path.expanduser()
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(f"the API token file {path} can be read by other users (mode {mode:o})",
                              hint=f"chmod 600 {path}")
        token = path.read_text(encoding="utf-8").strip()
        if not token:
            raise ConfigError(f"the API token file {path} is empty", hint="delete it; a new token is made at start")
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token


def read_token(path: Path) -> str:
    """A client's read of an existing token file (no creation)."""
    try:
        return path.expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the API token file {path}: {exc.strerror}",
                          hint="run as the user that started the bot, or pass --token-file") from None


def token_matches(header: str | None, token: str) -> bool:
    """True when an `Authorization` header carries `Bearer <token>`; constant-time in the token."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())
