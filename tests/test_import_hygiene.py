"""The engine loads without Textual: only trdr_tui.tui may import it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "trdr_tui"


def test_only_tui_imports_textual() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "tui":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "textual" or n.startswith(("textual.", "textual_plotext")) for n in names):
                offenders.append(str(rel))
    assert offenders == [], f"Textual imported outside trdr_tui/tui: {offenders}"


def test_engine_packages_import_without_textual() -> None:
    code = (
        "import sys, importlib, pkgutil, trdr_tui\n"
        "for m in pkgutil.walk_packages(trdr_tui.__path__, 'trdr_tui.'):\n"
        "    if m.name.startswith('trdr_tui.tui') or m.name == 'trdr_tui.__main__':\n"
        "        continue\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
