"""A non-editable wheel carries themes/, config/ and the demo data, and finds them at run time."""

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
