"""The options that say where things are (`--config`, `--db`, `--log-file`), accepted after a command's name
too (`trdr data import FILE --db x.duckdb`), by the CLI's parser and by a running instance's (`commands/remote.py`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# Options every command accepts after its name too (dest, flags, help); the top-level parser owns defaults.
ANYWHERE: tuple[tuple[str, str, str], ...] = (
    ("config", "--config", "config file (default: $XDG_CONFIG_HOME/trdr/config.toml)"),
    ("db", "--db", "DuckDB database file (default: $XDG_DATA_HOME/trdr/trdr.duckdb)"),
    ("log_file", "--log-file", "JSON log file, rotated; errors and fills also go to FILE's .errors.log and "
                               ".trades.log siblings (default: trdr.log beside the database)"),
)


def path_arg(text: str | os.PathLike[str]) -> Path:
    """An option's file path (argparse `type`): an empty one, or one with no file name (`.`, `/`), is a
    usage error (exit 2), where `Path("")` would quietly be the current folder and `Path("dir/")` a file
    named `dir`."""
    if not os.fspath(text).strip():
        raise argparse.ArgumentTypeError("an empty path: give a file name")
    path = Path(text)
    # `.`, `/`, `dir/`: no file name at all (a named folder is said to be one where it is opened)
    if not path.name or os.fspath(text).endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{os.fspath(text)!r} is a folder: give a file name")
    return path


def accept_anywhere(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `ANYWHERE` options to every subcommand (and theirs), without a default of their own so
    a value given before the command is kept unless repeated after it."""
    for parser in set(sub.choices.values()):
        taken = {s for action in parser._actions for s in action.option_strings}
        for dest, flag, text in ANYWHERE:
            if flag not in taken:
                parser.add_argument(flag, dest=dest, type=path_arg, default=argparse.SUPPRESS, help=text)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                accept_anywhere(action)
