"""Files that ship with trdr: themes, the default config, the bundled demo data.

In a wheel, `themes/` and `config/` live inside the package under `_bundled/`; in a source checkout
(editable install) they are read from the top level of the repository.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def bundled_dir(name: str) -> Traversable:
    """`themes` or `config`: the directory as shipped, wherever it was installed."""
    packaged = resources.files("trdr_tui") / "_bundled" / name
    if packaged.is_dir():
        return packaged
    source = _SOURCE_ROOT / name
    if source.is_dir():
        return source
    raise FileNotFoundError(f"trdr's bundled '{name}' directory is missing; reinstall trdr")


def read_bundled_text(directory: str, filename: str) -> str:
    return (bundled_dir(directory) / filename).read_text(encoding="utf-8")


def demo_data_path() -> Traversable:
    """Real Coinbase BTC-USD hourly candles bundled for the offline demo."""
    return resources.files("trdr_tui") / "data" / "demo_btcusd_1h.csv"
