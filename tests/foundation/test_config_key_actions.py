"""A `[tui.keys]` typo is refused when the configuration loads, by every command (exit 2), naming the
action and the actions there are; not first by the cockpit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.foundation.conftest import RunCli
from trdr_tui.config import KEY_ACTIONS, load_settings
from trdr_tui.core.errors import ConfigError

BASE = 'symbol = "BTC-USD"\ncapital = 1000\nrisk_tolerance = "moderate"\n'


@pytest.mark.parametrize("command", [["sessions", "list"], ["agents"], ["data", "list"], ["params", "list"],
                                     ["backtest", "--start", "2019-01-01"]], ids=lambda c: " ".join(c))
def test_every_command_refuses_an_unknown_action(run_cli: RunCli, tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(BASE + '[tui.keys]\npaus = "p"\n')
    code, out, err = run_cli(*command, db=tmp_path / "x.duckdb", config=config)
    assert code == 2, out
    assert f"{config}: unknown action 'paus' in [tui.keys]" in err
    assert "did you mean 'pause'?" in err and f"actions: {', '.join(KEY_ACTIONS)}" in err


def test_an_empty_key_and_a_set_override_are_refused_too(run_cli: RunCli, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(BASE + '[tui.keys]\npause = " "\n')
    code, _, err = run_cli("sessions", "list", db=tmp_path / "x.duckdb", config=config)
    assert code == 2 and "no key for action 'pause' in [tui.keys]" in err
    with pytest.raises(ConfigError, match="unknown action 'qiut'"):
        load_settings(overrides={"tui.keys": {"qiut": "x"}})


def test_a_valid_keymap_loads() -> None:
    assert dict(load_settings(overrides={"tui.keys": {"pause": "p", "quit": "ctrl+q"}}).tui.keys)["pause"] == "p"


def test_a_key_already_in_use_is_refused_naming_both_actions(run_cli: RunCli, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(BASE + '[tui.keys]\npause = "p,q"\n')
    code, out, err = run_cli("sessions", "list", db=tmp_path / "x.duckdb", config=config)
    assert code == 2, out
    assert f"{config}: key 'q' is bound to two actions in [tui.keys]: 'pause' and 'quit'" in err
    assert 'quit = "q"' in err
    with pytest.raises(ConfigError, match="'log_level' and 'export_chart'"):
        load_settings(overrides={"tui.keys": {"export_chart": "l"}})
    # a swap frees each key before the other takes it
    swapped = load_settings(overrides={"tui.keys": {"pause": "q", "quit": "space"}})
    assert dict(swapped.tui.keys) == {"pause": "q", "quit": "space"}
