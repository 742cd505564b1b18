"""What every CLI handler receives: the parsed arguments, the settings and the store."""

from __future__ import annotations

import argparse
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trdr_tui.config import Settings
    from trdr_tui.store import Store


class CliContext:
    """What every command needs, built lazily: settings (validated) and the store (opened once)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._store: Store | None = None
        self._shared: Store | None = None  # a store opened by the running instance (commands/remote.py)
        self.reads_only = False  # a read command (commands/remote.py READ_COMMANDS): creates no directory

    @cached_property
    def settings(self) -> Settings:
        """The validated settings; the database they name is checked too (a candle file passed as --db is
        refused here, before a command computes anything, as Store would refuse it when opened)."""
        from trdr_tui.config import load_settings
        from trdr_tui.store.db import check_database_file

        overrides = dict(getattr(self.args, "overrides", None) or {})
        settings = load_settings(self.args.config, overrides=overrides or None)
        check_database_file(self._db_path(settings))
        return settings

    @property
    def db_path(self) -> str:
        return self._db_path(self.settings)

    def _db_path(self, settings: Settings) -> str:
        import os

        from trdr_tui.store import default_db_path

        if self.args.db is not None:
            return str(self.args.db)
        if os.environ.get("TRDR_DB"):
            return os.environ["TRDR_DB"]
        if settings.store.path:
            return settings.store.path
        return str(default_db_path())

    @property
    def store(self) -> Store:
        if self._shared is not None:
            return self._shared
        if self._store is None:
            from trdr_tui.api.host import find_instance
            from trdr_tui.core.errors import StopError
            from trdr_tui.store import Store

            running = find_instance(self.db_path)
            if running is not None:  # DuckDB would refuse the lock; say who holds it and what to do
                raise StopError(f"the database {self.db_path} is in use by {running.describe()}; "
                                "this command opens it itself (one process at a time can) and is refused "
                                "while that instance runs",
                                hint=f"stop it first (trdr status; POST {running.url}/api/trading/stop, or "
                                     f"kill -TERM {running.pid}), or pass another --db")
            self._check_readable()
            self._store = Store(self.db_path)
        return self._store

    def _check_readable(self) -> None:
        """A read command on a database whose directory does not exist: refused (exit 2) before anything
        is created there. (A missing file in an existing directory reads as empty; `close` removes it.)"""
        from pathlib import Path

        from trdr_tui.core.errors import StopError

        path = Path(self.db_path).expanduser()
        if self.reads_only and not path.exists() and not path.parent.is_dir():
            raise StopError(f"there is no database at {path} (the directory {path.parent} does not exist)",
                            hint=f"pass --db an existing database, or create this one by importing candles: "
                                 f"trdr data import FILE --symbol BTC-USD --timeframe 1h --db {path}")

    def share_store(self, store: Store) -> None:
        """Use a store the caller owns (and closes): the running instance answering a read command."""
        self._shared = store

    def close(self) -> None:
        """Close the store; a database file this command created and wrote nothing to (it failed, or
        only read) is removed, so no empty database is left behind."""
        store, self._store = self._store, None
        if store is None:
            return
        try:  # a paper/live run (a journal writer) is never a command that wrote nothing
            empty = store.created and store.writer is None and store.holds_nothing()
        except Exception:  # a broken connection: keep the file, it is reported elsewhere
            empty = False
        if empty:
            store.remove()
        else:
            store.close()
