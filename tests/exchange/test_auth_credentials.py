"""JWT signing/verification and credential loading, including proof that secrets are redacted."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from tests.exchange.conftest import KEY_NAME
from trdr_tui.core.errors import CredentialsError
from trdr_tui.exchange.coinbase_auth import (
    JwtError,
    JwtSigner,
    generate_ed25519_key_b64,
    parse_private_key,
    verify_jwt,
)
from trdr_tui.exchange.credentials import credentials_from_values, load_credentials, require_credentials

NOW = 1_750_000_000


def _parts(token: str) -> tuple[dict, dict]:
    h, c, _ = token.split(".")
    pad = lambda t: t + "=" * (-len(t) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(h))), json.loads(base64.urlsafe_b64decode(pad(c)))


def test_rest_jwt_claims_and_headers(secret_pem: str) -> None:
    signer = JwtSigner(KEY_NAME, parse_private_key(secret_pem), now_s=lambda: NOW)
    token = signer.rest_jwt("get", "api.coinbase.com", "/api/v3/brokerage/accounts?limit=5")
    header, claims = _parts(token)
    assert header["alg"] == "ES256" and header["kid"] == KEY_NAME and len(header["nonce"]) == 64
    assert claims == {"sub": KEY_NAME, "iss": "cdp", "nbf": NOW, "exp": NOW + 120,
                      "uri": "GET api.coinbase.com/api/v3/brokerage/accounts"}
    keys = {KEY_NAME: signer.public_key()}
    assert verify_jwt(token, keys, now_s=NOW + 5, expected_uri="GET api.coinbase.com/api/v3/brokerage/accounts")
    # each token is fresh: a new nonce every time
    assert _parts(signer.rest_jwt("GET", "h", "/p"))[0]["nonce"] != _parts(signer.rest_jwt("GET", "h", "/p"))[0]["nonce"]


def test_ws_jwt_has_no_uri(secret_pem: str) -> None:
    signer = JwtSigner(KEY_NAME, parse_private_key(secret_pem), now_s=lambda: NOW)
    _, claims = _parts(signer.ws_jwt())
    assert "uri" not in claims and claims["iss"] == "cdp"


@pytest.mark.parametrize(
    ("now", "uri", "problem"),
    [
        (NOW - 10, "GET h/p", "not yet valid"),
        (NOW + 120, "GET h/p", "expired"),
        (NOW, "POST h/p", "uri"),
        (NOW, "GET other/p", "uri"),
    ],
)
def test_verify_rejects_time_and_uri(secret_pem: str, now: int, uri: str, problem: str) -> None:
    signer = JwtSigner(KEY_NAME, parse_private_key(secret_pem), now_s=lambda: NOW)
    token = signer.rest_jwt("GET", "h", "/p")
    with pytest.raises(JwtError, match=problem):
        verify_jwt(token, {KEY_NAME: signer.public_key()}, now_s=now, expected_uri=uri)


def test_verify_rejects_tampering_and_other_keys(secret_pem: str) -> None:
    from trdr_tui.exchange.coinbase_auth import generate_ec_key_pem

    signer = JwtSigner(KEY_NAME, parse_private_key(secret_pem), now_s=lambda: NOW)
    token = signer.rest_jwt("GET", "h", "/p")
    h, _c, sig = token.split(".")
    forged_claims = base64.urlsafe_b64encode(json.dumps(
        {"sub": KEY_NAME, "iss": "cdp", "nbf": NOW, "exp": NOW + 120, "uri": "POST h/p"}).encode()).rstrip(b"=").decode()
    with pytest.raises(JwtError, match="signature"):
        verify_jwt(f"{h}.{forged_claims}.{sig}", {KEY_NAME: signer.public_key()}, now_s=NOW)
    other = parse_private_key(generate_ec_key_pem()).public_key()
    with pytest.raises(JwtError, match="signature"):
        verify_jwt(token, {KEY_NAME: other}, now_s=NOW)


def test_ed25519_keys_sign_eddsa() -> None:
    key = parse_private_key(generate_ed25519_key_b64())
    signer = JwtSigner("ed-key-id-0123456789abcdef", key, now_s=lambda: NOW)
    token = signer.rest_jwt("GET", "h", "/p")
    assert _parts(token)[0]["alg"] == "EdDSA"
    assert verify_jwt(token, {"ed-key-id-0123456789abcdef": signer.public_key()}, now_s=NOW, expected_uri="GET h/p")


def test_pem_with_literal_backslash_n(secret_pem: str) -> None:
    one_line = secret_pem.strip().replace("\n", "\\n")
    creds = credentials_from_values(KEY_NAME, one_line, source="environment")
    assert creds.algorithm == "ES256"


@pytest.mark.parametrize(
    ("name", "secret", "match"),
    [
        ("", "x", "key name is empty"),
        ("my-legacy-key", "x", "does not look like"),
        (KEY_NAME, "", "secret is empty"),
        (KEY_NAME, "-----BEGIN EC PRIVATE KEY-----\nQUJDREVG\n-----END EC PRIVATE KEY-----", "cannot be parsed"),
        (KEY_NAME, "not a key at all", "neither a PEM"),
    ],
)
def test_malformed_keys_get_clear_errors(name: str, secret: str, match: str) -> None:
    with pytest.raises(CredentialsError, match=match) as info:
        credentials_from_values(name, secret, source="environment")
    assert info.value.hint  # every error says how to fix it
    if len(secret) > 3:
        assert secret not in str(info.value)


def test_secret_never_printed_or_logged(secret_pem: str, caplog: pytest.LogCaptureFixture) -> None:
    creds = credentials_from_values(KEY_NAME, secret_pem, source="environment")
    body = "".join(secret_pem.strip().splitlines()[1:-1])
    chunks = [body[i:i + 16] for i in range(0, len(body), 16)]
    texts = [repr(creds), str(creds), repr(creds.signer()), f"{creds}", f"{creds!r}"]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("trdr").info("loaded %s / %r", creds, creds.signer())
    texts.append(caplog.text)
    for text in texts:
        assert "redacted" in text or "JwtSigner" in text
        assert not any(chunk in text for chunk in chunks), "a piece of the secret leaked"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(creds)


def test_bad_pem_error_does_not_echo_secret() -> None:
    secret = "-----BEGIN EC PRIVATE KEY-----\nTUlJQ0FRRUVJSE5vdEFSZWFsS2V5QnV0U2VjcmV0\n-----END EC PRIVATE KEY-----"
    with pytest.raises(CredentialsError) as info:
        credentials_from_values(KEY_NAME, secret, source="environment")
    text = str(info.value) + repr(info.value)
    assert "TUlJQ0FRRUVJSE5vdEFSZWFsS2V5QnV0U2VjcmV0" not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__  # the parser error is not chained


def test_env_credentials(secret_pem: str) -> None:
    creds = load_credentials(env={"TRDR_COINBASE_API_KEY": KEY_NAME, "TRDR_COINBASE_API_SECRET": secret_pem})
    assert creds is not None and creds.key_name == KEY_NAME and creds.source == "environment"
    assert load_credentials(env={}) is None
    with pytest.raises(CredentialsError, match="TRDR_COINBASE_API_SECRET is not set"):
        load_credentials(env={"TRDR_COINBASE_API_KEY": KEY_NAME})
    with pytest.raises(CredentialsError, match="no Coinbase API credentials"):
        require_credentials(env={})


def _write_key_file(path: Path, secret_pem: str, mode: int) -> Path:
    path.write_text(json.dumps({"name": KEY_NAME, "privateKey": secret_pem}))
    path.chmod(mode)
    return path


def test_key_file_must_be_private(tmp_path: Path, secret_pem: str) -> None:
    path = _write_key_file(tmp_path / "cdp_api_key.json", secret_pem, 0o644)
    with pytest.raises(CredentialsError) as info:
        load_credentials(env={"TRDR_COINBASE_KEY_FILE": str(path)})
    assert f"chmod 600 {path}" in str(info.value)
    path.chmod(0o600)
    creds = load_credentials(env={"TRDR_COINBASE_KEY_FILE": str(path)})
    assert creds is not None and creds.key_name == KEY_NAME


def test_key_file_from_settings_and_bad_contents(tmp_path: Path, secret_pem: str) -> None:
    from trdr_tui.config import load_settings

    path = _write_key_file(tmp_path / "k.json", secret_pem, 0o600)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[coinbase]\nkey_file = "{path}"\n')
    settings = load_settings(cfg, env={})
    creds = load_credentials(settings, env={})
    assert creds is not None and "key_file" in creds.source
    path.write_text('{"name": 5}')
    with pytest.raises(CredentialsError, match="lacks"):
        load_credentials(settings, env={})
    path.write_text("{not json " + secret_pem)
    with pytest.raises(CredentialsError, match="not valid JSON") as info:
        load_credentials(settings, env={})
    assert "PRIVATE KEY" not in str(info.value)
