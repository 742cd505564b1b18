"""Coinbase API credentials: from the environment or a private CDP key file, never from config.

Sources, first found wins:
1. `TRDR_COINBASE_API_KEY` (the key name `organizations/{org}/apiKeys/{key}`) and
   `TRDR_COINBASE_API_SECRET` (the PEM private key; literal `\\n` accepted);
2. a CDP key JSON file `{"name": ..., "privateKey": ...}` named by `TRDR_COINBASE_KEY_FILE` or
   `[coinbase] key_file` in the config. The file must not be readable by group or others.

The secret is parsed into a key object at once and the text is dropped. `Credentials` prints as
`<redacted>`; every error names the source and the fix, never the secret. `verify_credentials` asks
the exchange whether it accepts the key (paper and live check it before they start).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from trdr_tui.config import Settings
from trdr_tui.core.errors import CredentialsError
from trdr_tui.exchange.coinbase_auth import JwtSigner, PrivateKey, algorithm_for, parse_private_key

KEY_NAME_RE = re.compile(r"^organizations/[^/\s]+/apiKeys/[^/\s]+$")
# Ed25519 CDP keys are named by a bare id (uuid) rather than the organizations/... path.
KEY_ID_RE = re.compile(r"^[0-9a-fA-F-]{16,64}$")


class Credentials:
    """A CDP key name and its parsed private key. The secret never appears in repr/str."""

    __slots__ = ("_key", "key_name", "source")

    def __init__(self, key_name: str, private_key: PrivateKey, *, source: str) -> None:
        self.key_name = key_name
        self._key = private_key
        self.source = source

    @property
    def algorithm(self) -> str:
        return algorithm_for(self._key)

    def signer(self) -> JwtSigner:
        return JwtSigner(self.key_name, self._key)

    def __repr__(self) -> str:
        return f"Credentials(key_name={self.key_name!r}, algorithm={self.algorithm}, source={self.source}, secret=<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:  # never pickled into a checkpoint or a worker
        raise TypeError("Credentials cannot be serialized")


def credentials_from_values(key_name: str, secret: str, *, source: str) -> Credentials:
    name = key_name.strip()
    if not name:
        raise CredentialsError("the API key name is empty", where=source,
                               hint="use the key name shown by Coinbase: organizations/{org}/apiKeys/{key}")
    if not (KEY_NAME_RE.match(name) or KEY_ID_RE.match(name)):
        raise CredentialsError(
            "the API key name does not look like organizations/{org}/apiKeys/{key}",
            where=source,
            hint="copy the key's 'name' from the CDP key file (not the secret, not a legacy API key)",
        )
    try:
        key = parse_private_key(secret)
    except CredentialsError as exc:
        raise CredentialsError(exc.message, where=source, hint=exc.hint) from None
    return Credentials(name, key, source=source)


def check_private_file(path: Path) -> None:
    """Refuse a key file that group or others can read (or write)."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"key file {path} is accessible by other users (mode {stat.filemode(mode)})",
            hint=f"run: chmod 600 {path}",
        )


def credentials_from_file(path: str | Path, *, source: str) -> Credentials:
    p = Path(path).expanduser()
    where = f"{source} {p}"
    if not p.is_file():
        raise CredentialsError("key file does not exist", where=where, hint="check the path, or unset it")
    check_private_file(p)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read key file: {type(exc).__name__}", where=where) from None
    except json.JSONDecodeError as exc:
        # the message carries only a position, never the content
        raise CredentialsError(f"key file is not valid JSON (line {exc.lineno}, column {exc.colno})",
                               where=where, hint="use the JSON file downloaded from the CDP portal") from None
    if not isinstance(data, dict):
        raise CredentialsError("key file must hold a JSON object", where=where,
                               hint='expected {"name": "organizations/...", "privateKey": "-----BEGIN ..."}')
    name = data.get("name") or data.get("id")
    secret = data.get("privateKey")
    if not isinstance(name, str) or not isinstance(secret, str):
        raise CredentialsError('key file lacks "name" and "privateKey" strings', where=where,
                               hint='expected {"name": "organizations/...", "privateKey": "-----BEGIN ..."}')
    return credentials_from_values(name, secret, source=where)


def load_credentials(settings: Settings | None = None, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The configured credentials, or None when none are configured (public data needs none)."""
    env = os.environ if env is None else env
    key = env.get("TRDR_COINBASE_API_KEY", "")
    secret = env.get("TRDR_COINBASE_API_SECRET", "")
    if key or secret:
        if not (key and secret):
            missing = "TRDR_COINBASE_API_SECRET" if key else "TRDR_COINBASE_API_KEY"
            raise CredentialsError(f"{missing} is not set", where="environment",
                                   hint="set both TRDR_COINBASE_API_KEY and TRDR_COINBASE_API_SECRET, or neither")
        return credentials_from_values(key, secret, source="environment")
    if env.get("TRDR_COINBASE_KEY_FILE"):
        return credentials_from_file(env["TRDR_COINBASE_KEY_FILE"], source="TRDR_COINBASE_KEY_FILE")
    if settings is not None and settings.coinbase.key_file:
        return credentials_from_file(settings.coinbase.key_file, source="[coinbase] key_file")
    return None


def require_credentials(settings: Settings | None = None, env: Mapping[str, str] | None = None) -> Credentials:
    creds = load_credentials(settings, env)
    if creds is None:
        raise CredentialsError(
            "no Coinbase API credentials configured",
            hint="set TRDR_COINBASE_API_KEY and TRDR_COINBASE_API_SECRET, or TRDR_COINBASE_KEY_FILE "
            "(a CDP key JSON file, chmod 600)",
        )
    return creds


REJECTED_KEY_HINT = ("check the key's name and private key (the CDP key file, copied whole), that the key is not "
                     "revoked and has the view and trade permissions, and that this machine's clock is right "
                     "(request tokens are valid for 2 minutes); `trdr account` checks a key")


def rejected_key(creds: Credentials, detail: str) -> CredentialsError:
    """The error for a key the exchange refused: which key, where it came from, what to do."""
    return CredentialsError(f"Coinbase rejected the API key {creds.key_name} ({detail})", where=creds.source,
                            hint=REJECTED_KEY_HINT)


async def verify_credentials(creds: Credentials, rest_url: str) -> None:
    """Prove the exchange at `rest_url` accepts `creds` with one signed call (GET /accounts, one row).

    Raises CredentialsError (`rejected_key`) when it answers 401/403 and RetryError when it cannot be
    reached after the REST client's retries."""
    from trdr_tui.core.bus import EventBus
    from trdr_tui.core.clock import WallClock
    from trdr_tui.core.opevents import OperatorEvents
    from trdr_tui.exchange.coinbase_models import AccountsPage
    from trdr_tui.exchange.coinbase_rest import AuthFailed, CoinbaseRest

    events = OperatorEvents()
    events.bind(EventBus(), WallClock())  # the outcome is what this raises: its events go nowhere
    async with CoinbaseRest(rest_url, signer=creds.signer(), events=events) as rest:
        try:
            await rest.request("GET", "/accounts", AccountsPage, params=[("limit", "1")])
        except AuthFailed as exc:
            raise rejected_key(creds, exc.message) from None
