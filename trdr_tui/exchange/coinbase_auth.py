"""CDP API key authentication for Coinbase Advanced Trade: a fresh signed JWT for every request.

Coinbase expects `Authorization: Bearer <jwt>` where the JWT carries
`sub` = key name, `iss` = "cdp", `nbf` = now, `exp` = now + 120 and, for REST, `uri` =
"METHOD host/path" (no scheme, no query string); its header carries `kid` = key name and a random
`nonce`. WebSocket subscribe messages carry the same token without `uri`.

ES256 (ECDSA P-256, the default CDP key) and EdDSA (Ed25519) are supported. JWTs are built with
`cryptography` directly: the format is small enough that a JWT library adds nothing. `verify_jwt`
exists for the fake exchange and the tests; the real client only signs.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from trdr_tui.core.clock import NS_PER_SECOND, WallClock
from trdr_tui.core.errors import CredentialsError

JWT_LIFETIME_S = 120
ISSUER = "cdp"

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class JwtError(Exception):
    """A JWT failed verification (used by the fake exchange to answer 401)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    pad = "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(text + pad)
    except (binascii.Error, ValueError) as exc:
        raise JwtError("malformed base64url segment") from exc


def parse_private_key(secret: str) -> PrivateKey:
    """Load a CDP secret: SEC1/PKCS8 EC PEM, PKCS8 Ed25519 PEM, or raw base64 Ed25519 (32 or 64 bytes).

    Literal `\\n` sequences (how many people paste a PEM into one environment line) become newlines.
    The error never quotes the secret.
    """
    text = secret.strip().replace("\\n", "\n")
    if not text:
        raise CredentialsError("the API secret is empty", hint="set TRDR_COINBASE_API_SECRET to the key's PEM")
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
        except (ValueError, TypeError):
            raise CredentialsError(
                "the API secret looks like a PEM key but cannot be parsed",
                hint="paste the whole key including the BEGIN/END lines; keep its line breaks (or write them as \\n)",
            ) from None  # parser messages can echo key material: never chain them
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise CredentialsError(f"the EC key uses curve {key.curve.name}; Coinbase CDP keys use P-256",
                                       hint="create an ECDSA key in the Coinbase developer portal")
            return key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key
        raise CredentialsError(f"unsupported key type {type(key).__name__}",
                               hint="use an ECDSA (ES256) or Ed25519 CDP API key")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) in (32, 64):
        return ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
    raise CredentialsError(
        "the API secret is neither a PEM private key nor a base64 Ed25519 key",
        hint="copy the privateKey value from the CDP key file (it starts with -----BEGIN EC PRIVATE KEY-----)",
    )


def algorithm_for(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ES256"
    return "EdDSA"


def _sign(key: PrivateKey, signing_input: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        der = key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return key.sign(signing_input)


def encode_jwt(claims: dict[str, Any], key: PrivateKey, headers: dict[str, str]) -> str:
    header = {"alg": algorithm_for(key), "typ": "JWT", **headers}
    segments = [
        _b64url(json.dumps(header, separators=(",", ":")).encode()),
        _b64url(json.dumps(claims, separators=(",", ":")).encode()),
    ]
    signing_input = ".".join(segments).encode("ascii")
    segments.append(_b64url(_sign(key, signing_input)))
    return ".".join(segments)


def format_uri(method: str, host: str, path: str) -> str:
    """The `uri` claim: "METHOD host/path" — no scheme and no query string."""
    return f"{method.upper()} {host}{path.split('?', 1)[0]}"


class JwtSigner:
    """Builds a fresh JWT per request for one CDP key. Holds the parsed key, never the PEM text."""

    def __init__(self, key_name: str, private_key: PrivateKey, *, now_s: Callable[[], int] | None = None) -> None:
        self._key_name = key_name
        self._key = private_key
        clock = WallClock()
        self._now_s = now_s or (lambda: clock.now_ns() // NS_PER_SECOND)

    @property
    def algorithm(self) -> str:
        return algorithm_for(self._key)

    def public_key(self) -> PublicKey:
        return self._key.public_key()

    def _claims(self) -> dict[str, Any]:
        now = self._now_s()
        return {"sub": self._key_name, "iss": ISSUER, "nbf": now, "exp": now + JWT_LIFETIME_S}

    def rest_jwt(self, method: str, host: str, path: str) -> str:
        claims = self._claims()
        claims["uri"] = format_uri(method, host, path)
        return encode_jwt(claims, self._key, {"kid": self._key_name, "nonce": secrets.token_hex()})

    def ws_jwt(self) -> str:
        return encode_jwt(self._claims(), self._key, {"kid": self._key_name, "nonce": secrets.token_hex()})

    def __repr__(self) -> str:
        return f"JwtSigner(key_name={self._key_name!r}, algorithm={self.algorithm!r}, key=<redacted>)"


def verify_jwt(
    token: str,
    public_keys: dict[str, PublicKey],
    *,
    now_s: int,
    expected_uri: str | None = None,
    leeway_s: int = 0,
) -> dict[str, Any]:
    """Check signature, issuer, nbf/exp and (for REST) the `uri` claim. Returns the claims."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError("token is not three dot-separated segments")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
    except ValueError as exc:
        raise JwtError("token header or claims are not JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtError("token header or claims are not objects")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in public_keys:
        raise JwtError("unknown key id")
    if not header.get("nonce"):
        raise JwtError("missing nonce header")
    key = public_keys[kid]
    alg = algorithm_for(key)
    if header.get("alg") != alg:
        raise JwtError(f"alg {header.get('alg')!r} does not match the key ({alg})")
    signature = _b64url_decode(parts[2])
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise JwtError("ES256 signature must be 64 bytes")
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, signing_input)
    except InvalidSignature as exc:
        raise JwtError("bad signature") from exc
    if claims.get("sub") != kid:
        raise JwtError("sub does not match kid")
    if claims.get("iss") != ISSUER:
        raise JwtError("iss must be 'cdp'")
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(nbf, int) or not isinstance(exp, int):
        raise JwtError("nbf/exp missing")
    if now_s + leeway_s < nbf:
        raise JwtError("token not yet valid (nbf in the future)")
    if now_s - leeway_s >= exp:
        raise JwtError("token expired")
    if exp - nbf > JWT_LIFETIME_S:
        raise JwtError("token lifetime longer than 120 s")
    if expected_uri is not None and claims.get("uri") != expected_uri:
        raise JwtError("uri claim does not match the request")
    return claims


def generate_ec_key_pem() -> str:
    """A new P-256 key as SEC1 PEM — what the CDP portal hands out (for tests and the fake exchange)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode("ascii")


def generate_ed25519_key_b64() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw + pub).decode("ascii")
