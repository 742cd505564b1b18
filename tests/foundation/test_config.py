"""Configuration: the minimal file, defaults, layers (file, XDG, environment) and precise errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import msgspec
import pytest

from trdr_tui.cli import main
from trdr_tui.config import RISK_PROFILES, Settings, convert_settings, load_settings
from trdr_tui.core.errors import ConfigError

MINIMAL = 'symbol = "ETH-USD"\ncapital = 2500\nrisk_tolerance = "conservative"\n'


def _file(tmp_path: Path, text: str, name: str = "trdr.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _refused(path: Path | None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(path, env=env or {})
    return str(err.value)


def test_shipped_defaults_load_without_a_user_file() -> None:
    s = load_settings(env={})
    assert (s.symbol, s.capital, s.risk_tolerance, s.mode) == ("BTC-USD", 10_000.0, "moderate", "paper")


def test_minimal_three_key_file_works_and_fills_the_rest(tmp_path: Path) -> None:
    s = load_settings(_file(tmp_path, MINIMAL), env={})
    assert (s.symbol, s.capital, s.risk_tolerance) == ("ETH-USD", 2500.0, "conservative")
    profile = RISK_PROFILES["conservative"]
    assert s.risk.max_drawdown == profile.max_drawdown
    assert s.agents.min_confidence == profile.min_confidence
    assert s.trailing.distance == profile.trail_base
    assert s.risk.max_concurrent_trades == 2  # floor(0.10 / 0.05)
    assert s.grid.levels == convert_settings({}).grid.levels  # untouched defaults


def test_unknown_key_names_file_and_section_with_suggestion(tmp_path: Path) -> None:
    path = _file(tmp_path, MINIMAL + "[grid]\nlevles = 12\n")
    text = _refused(path)
    assert str(path) in text and "unknown key 'levles' [grid]" in text and "did you mean 'levels'?" in text


def test_unknown_section_is_suggested(tmp_path: Path) -> None:
    text = _refused(_file(tmp_path, MINIMAL + "[gird]\nlevels = 12\n"))
    assert "unknown key 'gird'" in text and "did you mean 'grid'?" in text


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = _file(tmp_path, 'symbol = "BTC-USD"\ncapital = "lots"\nrisk_tolerance = "moderate"\n')
    text = _refused(path)
    assert str(path) in text and "key 'capital' = 'lots'" in text and "Expected `float`" in text


def test_out_of_range_value_names_file_key_and_value(tmp_path: Path) -> None:
    path = _file(tmp_path, MINIMAL + "[grid]\nmin_spacing = 0.9\n")
    text = _refused(path)
    assert str(path) in text and "key 'grid.min_spacing' = 0.9" in text and "between 0.0001 and 0.5" in text


def test_bad_choice_lists_the_choices_and_suggests_one(tmp_path: Path) -> None:
    text = _refused(_file(tmp_path, 'symbol = "BTC-USD"\ncapital = 1000\nrisk_tolerance = "moderat"\n'))
    assert "key 'risk_tolerance' = 'moderat'" in text
    assert "must be one of: conservative, moderate, aggressive" in text and "did you mean 'moderate'?" in text


def test_negative_capital_is_refused(tmp_path: Path) -> None:
    text = _refused(_file(tmp_path, 'symbol = "BTC-USD"\ncapital = -5\nrisk_tolerance = "moderate"\n'))
    assert "key 'capital' = -5" in text and "positive" in text


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, 'symbol = "BTC-USD\n')
    assert "not valid TOML" in _refused(path) and str(path) in _refused(path)


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    assert "does not exist" in _refused(tmp_path / "nope.toml")


def test_environment_overrides_file(tmp_path: Path) -> None:
    env = {"TRDR_CAPITAL": "500", "TRDR_GRID__MIN_SPACING": "0.008", "TRDR_DB": "/ignored/not/a/key"}
    s = load_settings(_file(tmp_path, MINIMAL), env=env)
    assert s.capital == 500.0 and s.grid.min_spacing == 0.008
    assert s.symbol == "ETH-USD"


def test_process_environment_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRDR_CAPITAL", "750")
    monkeypatch.setenv("TRDR_GRID__MIN_SPACING", "0.007")
    s = load_settings(_file(tmp_path, MINIMAL))
    assert (s.capital, s.grid.min_spacing) == (750.0, 0.007)


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    text = _refused(_file(tmp_path, MINIMAL), env={"TRDR_CAPITAL": "500", "TRDR_GRID__LEVELS": "1"})
    assert text.startswith("environment variable TRDR_GRID__LEVELS: key 'grid.levels' = 1: "), text
    assert text.endswith("(or unset TRDR_GRID__LEVELS)"), text


def test_unknown_environment_key_is_refused(tmp_path: Path) -> None:
    text = _refused(_file(tmp_path, MINIMAL), env={"TRDR_GRID__LEVLES": "5"})
    assert text.startswith("environment variable TRDR_GRID__LEVLES: unknown key 'levles' [grid]"), text
    assert "did you mean 'levels'? (or unset TRDR_GRID__LEVLES)" in text


def test_a_bad_trdr_variable_is_named_with_its_value_through_the_cli(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRDR_CAPITAL", "abc")
    db = tmp_path / "t.duckdb"
    assert main(["--db", str(db), "sessions", "list"]) == 2
    assert capsys.readouterr().err == (
        "trdr: error: environment variable TRDR_CAPITAL: key 'capital' = 'abc': Expected `float`, got `str`\n"
        "  fix: use a value of the type and range shown; config/default.toml lists every key with its default "
        "(or unset TRDR_CAPITAL)\n")
    assert not db.exists()


def test_secret_variables_are_never_config_keys_nor_echoed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """TRDR_API_TOKEN (`trdr attach`'s token) is read where it is used, not as a config key; a secret put
    in a misspelt variable is refused by its name alone."""
    db = tmp_path / "t.duckdb"
    monkeypatch.setenv("TRDR_API_TOKEN", "tok-3f9a-secret")
    assert main(["--db", str(db), "sessions", "list"]) == 0
    monkeypatch.setenv("TRDR_COINBASE__API_SECRET", "sec-77c1-secret")
    assert main(["--db", str(db), "sessions", "list"]) == 2
    out, err = capsys.readouterr()
    assert "environment variable TRDR_COINBASE__API_SECRET: unknown key 'api_secret' [coinbase]" in err
    assert "tok-3f9a" not in out + err and "sec-77c1" not in out + err


def test_xdg_config_file_is_discovered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "trdr").mkdir(parents=True)
    (xdg / "trdr" / "config.toml").write_text(MINIMAL)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    s = load_settings(env={"XDG_CONFIG_HOME": str(xdg)})
    assert (s.symbol, s.capital) == ("ETH-USD", 2500.0)


def test_explicit_file_wins_over_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "trdr").mkdir(parents=True)
    (xdg / "trdr" / "config.toml").write_text('capital = "broken"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    s = load_settings(_file(tmp_path, MINIMAL), env={})
    assert s.capital == 2500.0


def test_settings_are_frozen() -> None:
    s = load_settings(env={})
    with pytest.raises(AttributeError):
        s.capital = 1.0  # type: ignore[misc]


def test_a_value_of_zero_is_kept_not_replaced_by_the_profile() -> None:
    s = load_settings(env={}, overrides={"agents.min_confidence": 0.0, "risk.stop_loss": 0.0})
    assert (s.agents.min_confidence, s.risk.stop_loss) == (0.0, 0.0)


def test_settings_leave_no_value_to_default_and_the_code_holds_no_defaults() -> None:
    # every default is in config/default.toml (or RISK_PROFILES): a struct default would be a second copy
    absent_allowed = {("StoreConfig", "path"), ("CoinbaseConfig", "key_file"), ("AIConfig", "base_url"),
                      ("AIConfig", "key_file"), ("FeeTier", "usd_to"), ("ApiConfig", "token_file"),
                      ("ApiConfig", "webhook_url")}
    # fields of list entries the user writes (config/default.toml cannot hold a default per entry)
    entry_defaults = {("Blackout", "days"): ()}

    def walk(struct: type[msgspec.Struct]) -> Iterator[tuple[str, msgspec.structs.FieldInfo]]:
        for f in msgspec.structs.fields(struct):
            yield struct.__name__, f
            if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct):
                yield from walk(f.type)
            for arg in get_args(f.type):  # tuple[FeeTier, ...]
                if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                    yield from walk(arg)

    fields = list(walk(Settings))
    assert len(fields) > 60
    for owner, f in fields:
        if (owner, f.name) in absent_allowed:
            assert f.default is None
            continue
        if (owner, f.name) in entry_defaults:
            assert f.default == entry_defaults[owner, f.name]
            continue
        assert f.required, f"{owner}.{f.name} has a default in code"
        assert type(None) not in get_args(f.type), f"{owner}.{f.name} is optional"


def test_convert_settings_layers_over_the_shipped_defaults() -> None:
    assert convert_settings({}) == load_settings(env={})
    s = load_settings(env={}, overrides={"risk_tolerance": "aggressive", "grid.levels": 12})
    assert convert_settings(s.to_dict()) == s


def test_a_bad_profile_value_names_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        convert_settings({"agents": {"min_confidence": 1.5}}, "test file")
    text = str(err.value)
    assert "agents.min_confidence" in text and "between 0.0 and 1.0" in text and "test file" in text


def test_a_weight_above_max_weight_is_refused_naming_the_range() -> None:
    with pytest.raises(ConfigError) as err:
        convert_settings({"agents": {"weights": {"momentum": 1e308}}}, "test file")
    assert "weight for agent 'momentum' must be a number from 0 to 3 ([agents] max_weight)" in str(err.value)
    s = convert_settings({"agents": {"weights": {"momentum": 5.0}, "max_weight": 5.0}})  # the bound is the key's
    assert s.agents.weights["momentum"] == 5.0
