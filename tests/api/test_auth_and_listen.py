"""The token file, the token comparison and the listen-address guard: without a server, and through the CLI
(bad API options are refused before the database is opened)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import DAILY_CDD
from trdr_tui.api.auth import load_or_create_token, token_matches
from trdr_tui.api.control import Hooks
from trdr_tui.api.host import ApiLaunch
from trdr_tui.api.server import is_loopback, parse_listen
from trdr_tui.cli import main
from trdr_tui.config import load_settings
from trdr_tui.core.errors import ConfigError


def test_token_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "api-token"
    token = load_or_create_token(path)
    assert len(token) >= 40 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == token
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_token(path)


def test_token_comparison() -> None:
    assert token_matches("Bearer abc", "abc")
    for header in (None, "", "abc", "Bearer ab", "Bearer abcd", "Basic abc", "bearer abc"):
        assert not token_matches(header, "abc")


def test_listen_addresses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_listen("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8765", "host:", "host:99999", ":80"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_listen(bad)
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    hooks = Hooks(settings=load_settings(None))

    def launch(listen: str, allow: bool) -> ApiLaunch:
        return ApiLaunch(listen=listen, hooks=hooks, token_file=tmp_path / "t", discovery=None, allow_remote=allow)

    launch("127.0.0.1:0", False).check()
    assert capsys.readouterr().err == ""
    with pytest.raises(ConfigError, match="listens beyond this machine"):
        launch("0.0.0.0:8765", False).check()
    launch("0.0.0.0:8765", True).check()
    assert "WITHOUT TLS" in capsys.readouterr().err


@pytest.mark.parametrize(("api", "said"), [
    (["--api", "nonsense"], "--api 'nonsense' is not HOST:PORT"),
    (["--api", ""], "--api '' is not HOST:PORT"),
    (["--api", "http://127.0.0.1:8765"], "--api 'http://127.0.0.1:8765' is not HOST:PORT"),
    (["--api", " 127.0.0.1:8765"], "--api ' 127.0.0.1:8765' is not HOST:PORT"),
    (["--api", "127.0.0.1:0", "--no-api"], "--api 127.0.0.1:0 and --no-api contradict each other"),
    (["--api", "8.8.8.8:80"], "--api 8.8.8.8:80 listens beyond this machine"),
    (["--api", "127.0.0.1:99999"], "--api '127.0.0.1:99999' is not HOST:PORT"),
    (["--api-tls-cert", "cert.pem"], "TLS needs both --api-tls-cert and --api-tls-key"),
], ids=["not-host-port", "empty", "url", "space", "with-no-api", "remote", "port-out-of-range", "cert-without-key"])
def test_bad_api_options_are_refused_before_the_database_is_created(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], api: list[str], said: str) -> None:
    db = tmp_path / "new.duckdb"
    argv = [*api, "--headless", "--feed", "replay", "--data", str(DAILY_CDD), "--speed", "max", "--db", str(db)]
    assert main(argv) == 2
    assert f"trdr: error: {said}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no database, journal, WAL, log or token file
