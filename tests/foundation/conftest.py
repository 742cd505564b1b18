"""Fixtures for the foundation tests: running the CLI in-process and corrupting copies of real files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from trdr_tui.cli import main

RunCli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """`run_cli("data", "list", db=path)` → (exit code, stdout, stderr), running `trdr_tui.cli.main`."""

    def run(*args: str | Path, db: Path | None = None, config: Path | None = None) -> tuple[int, str, str]:
        argv: list[str] = []
        if db is not None:
            argv += ["--db", str(db)]
        if config is not None:
            argv += ["--config", str(config)]
        argv += [str(a) for a in args]
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def edit_line(src: Path, dst: Path, line_no: int, edit: Callable[[str], str]) -> str:
    """Copy `src` to `dst` with 1-based line `line_no` replaced by `edit(line)`; returns the new line."""
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    old = lines[line_no - 1]
    ending = "\n" if old.endswith("\n") else ""
    new = edit(old.rstrip("\n"))
    lines[line_no - 1] = new + ending
    dst.write_text("".join(lines), encoding="utf-8")
    return new


def replace_field(line: str, index: int, value: str) -> str:
    fields = line.split(",")
    fields[index] = value
    return ",".join(fields)
