"""A non-editable wheel carries the trdr_tui package, themes/, config/ and the demo data, and finds them at
run time; the test-support package trdr_testkit (the fake exchange) stays out of it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(REPO), "-w", str(out)],
        check=True, cwd=out,
    )
    [built] = out.glob("trdr_tui-*.whl")
    return built


def test_wheel_contains_bundled_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"trdr_tui/data/demo_btcusd_1h.csv", "trdr_tui/data/README.md",
                "trdr_tui/_bundled/config/default.toml"}
    for folder in ("themes", "config"):
        files = [p for p in (REPO / folder).rglob("*") if p.is_file()]
        assert files, f"{folder}/ is empty"
        expected |= {f"trdr_tui/_bundled/{folder}/{p.relative_to(REPO / folder).as_posix()}" for p in files}
    assert expected <= names, sorted(expected - names)


def test_wheel_ships_the_package_without_the_test_kit(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {f"trdr_tui/{p.relative_to(REPO / 'trdr_tui').as_posix()}" for p in (REPO / "trdr_tui").rglob("*.py")}
    assert "trdr_tui/cli.py" in sources
    assert sources <= names, sorted(sources - names)
    assert (REPO / "trdr_testkit" / "fake_coinbase" / "server.py").is_file()
    kit = sorted(n for n in names if n.startswith("trdr_testkit/") or "fake_coinbase" in n or "exchange/fake" in n)
    assert kit == [], kit


def test_installed_package_imports_without_the_test_kit(wheel: Path, tmp_path: Path) -> None:
    """Every shipped module imports with trdr_testkit made unimportable: nothing shipped needs it."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys\n"
        "sys.modules['trdr_testkit'] = None\n"
        "import importlib, pathlib, pkgutil, trdr_tui\n"
        f"assert pathlib.Path(trdr_tui.__file__).is_relative_to({str(site)!r}), trdr_tui.__file__\n"
        "names = [m.name for m in pkgutil.walk_packages(trdr_tui.__path__, 'trdr_tui.')\n"
        "         if m.name != 'trdr_tui.__main__']\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    done = subprocess.run([sys.executable, "-c", code], cwd=site, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 50


def test_installed_layout_finds_its_files(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import trdr_tui, pathlib\n"
        f"assert pathlib.Path(trdr_tui.__file__).is_relative_to({str(site)!r}), trdr_tui.__file__\n"
        "from trdr_tui.resources import bundled_dir, demo_data_path\n"
        "assert '_bundled' in str(bundled_dir('config')) and '_bundled' in str(bundled_dir('themes'))\n"
        "from trdr_tui.config import load_settings\n"
        "assert load_settings(env={}).symbol == 'BTC-USD'\n"
        "from trdr_tui.market.importer import load_candle_file\n"
        "print(len(load_candle_file(str(demo_data_path()), '1h')))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    done = subprocess.run([sys.executable, "-c", code], cwd=site, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 24 * 180
