"""Starting the API beside a running engine, and finding a running instance from another process.

A running instance writes a discovery file next to its database, `<database>.api.json` (mode 0600):
`{"url", "pid", "token_file", "db", "mode", "symbol"}`. Another `trdr` process on the same database (which
DuckDB locks) reads it to ask the instance instead (`trdr status`, read commands through `POST /api/cli`),
or to name it when refusing a write. The file is removed when the instance stops; a file whose process
is gone is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trdr_tui.api.auth import load_or_create_token, read_token
from trdr_tui.api.control import Hooks
from trdr_tui.api.server import ApiServer, is_loopback, parse_listen, tls_context
from trdr_tui.core.errors import ConfigError
from trdr_tui.engine.loop import Engine


def discovery_path(db_path: str) -> Path | None:
    """Where an instance on `db_path` announces itself; None for an in-memory database."""
    if db_path == ":memory:":
        return None
    p = Path(db_path).expanduser()
    return p.with_name(p.name + ".api.json")


def default_token_path(db_path: str) -> Path:
    if db_path == ":memory:":
        from trdr_tui.config import xdg_data_dir

        return xdg_data_dir() / "api-token"
    return Path(db_path).expanduser().with_name("api-token")


@dataclass
class Instance:
    """A running trdr instance as its discovery file describes it."""

    url: str
    pid: int
    token_file: str
    db: str
    mode: str
    symbol: str

    def describe(self) -> str:
        return f"trdr (pid {self.pid}, {self.mode} {self.symbol}, API {self.url})"

    def token(self) -> str:
        return read_token(Path(self.token_file))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_instance(db_path: str) -> Instance | None:
    """The instance running on `db_path`, when its discovery file exists and its process is alive."""
    path = discovery_path(db_path)
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        inst = Instance(**{k: data[k] for k in ("url", "pid", "token_file", "db", "mode", "symbol")})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return inst if _alive(inst.pid) else None


@dataclass
class ApiLaunch:
    """How the host wants the API: where to listen, which token file, where to announce itself."""

    listen: str
    hooks: Hooks
    token_file: Path
    discovery: Path | None
    allow_remote: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    server: ApiServer | None = None
    _announced: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse a bad address before anything starts; warn about a non-loopback bind."""
        host, _ = parse_listen(self.listen)
        if not is_loopback(host):
            if not self.allow_remote:
                raise ConfigError(f"--api {self.listen} listens beyond this machine",
                                  hint="keep the default loopback address and use an SSH tunnel "
                                       "(ssh -L 8765:127.0.0.1:8765 server), or add --api-allow-remote")
            tls = "with TLS" if self.tls_cert else "WITHOUT TLS: the token crosses the network in clear"
            print(f"trdr: warning: the control API listens on {self.listen} {tls}; prefer an SSH tunnel "
                  "or --api-tls-cert/--api-tls-key", file=sys.stderr)
        tls_context(self.tls_cert, self.tls_key)

    async def start(self, engine: Callable[[], Engine]) -> ApiServer:
        token = load_or_create_token(self.token_file)
        host, port = parse_listen(self.listen)
        self.server = server = ApiServer(engine, self.hooks, token=token)
        try:
            url = await server.start(host, port, ssl_context=tls_context(self.tls_cert, self.tls_key))
        except OSError as exc:
            await server.close()
            raise ConfigError(f"the control API cannot listen on {self.listen}: {exc.strerror}",
                              hint="pick another port with --api HOST:PORT (port 0: a free one), or --no-api") from None
        print(f"trdr: control API on {url} (token in {self.token_file})", file=sys.stderr)
        self._announced = {"url": url, "pid": os.getpid(), "token_file": str(self.token_file)}
        self.announce(engine())
        return server

    def announce(self, engine: Engine) -> None:
        """(Re)write the discovery file for `engine` (after a mode switch: its new mode)."""
        if self.discovery is None or not self._announced:
            return
        self._write_discovery({**self._announced,
                               "db": str(self.discovery.with_name(self.discovery.name[:-len('.api.json')])),
                               "mode": engine.mode.value, "symbol": engine.symbol})

    def _write_discovery(self, data: dict[str, Any]) -> None:
        assert self.discovery is not None
        tmp = self.discovery.with_name(self.discovery.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        tmp.replace(self.discovery)

    async def stop(self) -> None:
        if self.discovery is not None:
            with contextlib.suppress(FileNotFoundError):
                self.discovery.unlink()
        if self.server is not None:
            await self.server.close()
            self.server = None
