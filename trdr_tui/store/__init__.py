"""DuckDB storage: schema and migrations, repositories, checkpoints, and the paper/live journal."""

from trdr_tui.store.db import Store, default_db_path
from trdr_tui.store.journal import replay_pending
from trdr_tui.store.sessions import mark_abandoned

Store.on_open.append(replay_pending)  # every read-write open applies what a dead process journaled
Store.on_open.append(mark_abandoned)  # ... and ends the sessions a dead process left running

__all__ = ["Store", "default_db_path"]
