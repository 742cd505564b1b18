"""Trading code depends on no engine: policies get a PolicyContext, never the Engine."""

from __future__ import annotations

import ast
from pathlib import Path

import trdr_tui.trading

TRADING = Path(trdr_tui.trading.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_trading_module_imports_the_engine() -> None:
    modules = sorted(TRADING.glob("*.py"))
    assert {"grid.py", "presets.py", "policy.py"} <= {m.name for m in modules}
    for module in modules:
        upward = {n for n in _imports(module) if n == "trdr_tui.engine" or n.startswith("trdr_tui.engine.")}
        assert not upward, f"{module.name} imports {sorted(upward)}"
