"""DuckDB storage: schema and migrations, repositories, checkpoints."""

from trdr_tui.store.db import Store, default_db_path

__all__ = ["Store", "default_db_path"]
