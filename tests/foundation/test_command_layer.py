"""The CLI is the top layer: only `cli.py` and `commands/` import `trdr_tui.commands`, and a command
module imports the CliContext from `commands/context.py`, never the package that lists it (a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "trdr_tui"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any level: statements and importlib.import_module("...")."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
    return names


def test_only_the_cli_imports_commands() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "commands" or rel == Path("cli.py"):
            continue
        if any(n == "trdr_tui.commands" or n.startswith("trdr_tui.commands.") for n in _imports(path)):
            offenders.append(str(rel))
    assert offenders == [], f"modules below the CLI import trdr_tui.commands: {offenders}"


def test_command_modules_do_not_import_their_package() -> None:
    offenders = []
    for path in (PKG / "commands").glob("*.py"):
        if path.name == "__init__.py":
            continue
        if "trdr_tui.commands" in _imports(path):
            offenders.append(path.name)
    assert offenders == [], f"import CliContext from trdr_tui.commands.context instead: {offenders}"
