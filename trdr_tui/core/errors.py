"""trdr's errors, grouped by what must happen next.

| code | meaning              | group   | what happens                 |
|------|----------------------|---------|------------------------------|
| E001 | connection lost      | Retry   | reconnect with backoff       |
| E002 | insufficient funds   | Reject  | reduce the size or skip      |
| E003 | rate limit exceeded  | Retry   | queue and retry              |
| E004 | invalid API response | Skip    | log, use the fallback        |
| E005 | agent timeout/error  | Skip    | decide without that agent    |
| E006 | risk limit exceeded  | Reject  | the order is refused         |
| E007 | state corruption     | Restore | restore from a checkpoint    |

Input errors (config, data files, keys) are `Stop` errors: nothing is changed, the message says
what is wrong, where, and how to fix it. `exit_code` is the `trdr` process's exit code for an error
that ends a command (README): 2 for bad input (`StopError`), 1 for a runtime failure (the rest,
`StorageError` included), 130 for an interrupt (`Interrupted`).
"""

from __future__ import annotations


class TrdrError(Exception):
    """Base of every trdr error. `code` is an Appendix-B code where one applies."""

    code: str = ""
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str = "", where: str = "") -> None:
        self.message = message
        self.hint = hint
        self.where = where
        super().__init__(self.render())

    def render(self) -> str:
        parts = []
        if self.code:
            parts.append(f"[{self.code}]")
        if self.where:
            parts.append(f"{self.where}:")
        parts.append(self.message)
        text = " ".join(parts)
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text


# --- groups: what must happen next -------------------------------------------------------------


class RetryError(TrdrError):
    """Transient: retry with backoff."""


class SkipError(TrdrError):
    """Skip this input and carry on (log it)."""


class RejectError(TrdrError):
    """Refuse this request; state is unchanged."""


class StopError(TrdrError):
    """The operator must act: stop with a clear message and change nothing."""

    exit_code = 2


class StorageError(StopError):
    """The database or the disk under it failed (full, unreadable, out of memory, a DuckDB fault): stop;
    what was being written is rolled back whole. A runtime failure (exit 1), not bad input."""

    exit_code = 1


class Interrupted(TrdrError):
    """The operator interrupted the command (Ctrl-C), also inside a database query."""

    exit_code = 130


class RestoreError(TrdrError):
    """State cannot be trusted: restore from the last good checkpoint."""


# --- coded errors -------------------------------------------------------------------------------


class ConnectionLost(RetryError):
    code = "E001"


class InsufficientFunds(RejectError):
    code = "E002"


class RateLimited(RetryError):
    code = "E003"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: str) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class InvalidResponse(SkipError):
    code = "E004"


class AgentFailed(SkipError):
    """An agent timed out or raised; the decision goes on without it."""

    code = "E005"

    def __init__(self, agent_id: str, message: str) -> None:
        self.agent_id = agent_id
        # a plugin's exception text may hold what no log can write (a lone surrogate): escaped, not lost
        super().__init__(message.encode("utf-8", "backslashreplace").decode(), where=f"agent {agent_id}")


class RiskLimitExceeded(RejectError):
    code = "E006"

    def __init__(self, failed_checks: list[str], message: str = "") -> None:
        self.failed_checks = failed_checks
        super().__init__(message or "order refused by risk checks: " + ", ".join(failed_checks))


class StateCorruption(RestoreError):
    code = "E007"


# --- input errors -------------------------------------------------------------------------------


class ConfigError(StopError):
    """Invalid configuration: names the file, the key, the bad value and the fix."""


class DataError(StopError):
    """Invalid data file or rows: names the file, the line and the field."""


class CredentialsError(StopError):
    """Missing, malformed or unsafe API credentials. Never includes the secret itself."""


class NotAvailable(StopError):
    """A command or feature that a later version provides."""
