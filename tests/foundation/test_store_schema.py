"""Store migrations and transactions on real DuckDB files."""

from __future__ import annotations

from pathlib import Path

import pytest

from trdr_tui.core.errors import RestoreError, StateCorruption
from trdr_tui.store import Store
from trdr_tui.store.schema import MIGRATIONS

LATEST = max(v for v, _, _ in MIGRATIONS)
TABLES = {"candles", "orders", "order_transitions", "fills", "trades", "agent_decisions", "agent_weights",
          "checkpoints", "grid_state", "backtest_sessions", "backtest_results", "parameter_versions",
          "optimizations", "schema_migrations"}


def test_migrations_are_numbered_in_order() -> None:
    versions = [v for v, _, _ in MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))


def test_fresh_database_is_at_the_latest_version(db_path: Path) -> None:
    with Store(db_path) as store:
        assert store.schema_version() == LATEST
        assert set(store.tables()) >= TABLES
        applied = store.conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert [v for (v,) in applied] == [v for v, _, _ in MIGRATIONS]
    assert db_path.is_file()


def test_reopening_applies_nothing(db_path: Path) -> None:
    Store(db_path).close()
    with Store(db_path) as store:
        assert store.migrate() == 0
        assert store.conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(MIGRATIONS),)


def test_database_newer_than_the_code_is_refused(db_path: Path) -> None:
    with Store(db_path) as store:
        store.conn.execute("INSERT INTO schema_migrations (version, description) VALUES (?, 'from the future')",
                           [LATEST + 1])
    with pytest.raises(StateCorruption) as err:
        Store(db_path)
    assert err.value.code == "E007" and isinstance(err.value, RestoreError)
    assert str(db_path) in str(err.value) and f"schema version {LATEST + 1}" in str(err.value)


def test_transaction_rolls_back_on_error(db_path: Path) -> None:
    with Store(db_path) as store:
        with pytest.raises(RuntimeError), store.transaction() as cur:
            cur.execute("INSERT INTO agent_weights VALUES ('momentum', 1.5, TIMESTAMP '2024-01-01')")
            raise RuntimeError("boom")
        assert store.conn.execute("SELECT count(*) FROM agent_weights").fetchone() == (0,)
        with store.transaction() as cur:
            cur.execute("INSERT INTO agent_weights VALUES ('momentum', 1.5, TIMESTAMP '2024-01-01')")
    with Store(db_path) as store:
        assert store.conn.execute("SELECT weight FROM agent_weights").fetchall() == [(1.5,)]


def test_in_memory_store_is_migrated() -> None:
    with Store(":memory:") as store:
        assert store.schema_version() == LATEST

