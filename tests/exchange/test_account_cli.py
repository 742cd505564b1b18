"""`trdr account` against the fake exchange run on its own (`python -m trdr_testkit.fake_coinbase`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from trdr_tui.cli import main


def test_account_shows_balances_fees_and_rules(standalone_fake: tuple[str, Path], monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rest, key_file = standalone_fake
    assert (key_file.stat().st_mode & 0o777) == 0o600
    monkeypatch.setenv("TRDR_COINBASE_REST_URL", rest)
    monkeypatch.setenv("TRDR_COINBASE_KEY_FILE", str(key_file))
    assert main(["account"]) == 0
    out = capsys.readouterr().out
    assert "Credentials OK" in out and "127.0.0.1" in out
    assert "USD" in out and "10000" in out
    assert "maker 0.4 %" in out and "taker 0.6 %" in out
    assert "size increment  0.00000001" in out and "min 0.00001" in out
    secret = json.loads(key_file.read_text())["privateKey"]
    assert all(chunk not in out for chunk in secret.splitlines()[1:-1])


def test_account_with_a_wrong_key_fails_clearly(standalone_fake: tuple[str, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from trdr_tui.exchange.coinbase_auth import generate_ec_key_pem

    rest, key_file = standalone_fake
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"name": json.loads(key_file.read_text())["name"],
                                 "privateKey": generate_ec_key_pem()}))
    other.chmod(0o600)
    monkeypatch.setenv("TRDR_COINBASE_REST_URL", rest)
    monkeypatch.setenv("TRDR_COINBASE_KEY_FILE", str(other))
    assert main(["account"]) == 2
    err = capsys.readouterr().err
    assert "401" in err and "fix:" in err


def test_account_without_credentials(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["account"]) == 2
    err = capsys.readouterr().err
    assert "no Coinbase API credentials" in err and "TRDR_COINBASE_KEY_FILE" in err


def test_account_refuses_a_readable_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.json"
    key.write_text("{}")
    os.chmod(key, 0o644)
    monkeypatch.setenv("TRDR_COINBASE_KEY_FILE", str(key))
    assert main(["account"]) == 2
    assert f"chmod 600 {key}" in capsys.readouterr().err
