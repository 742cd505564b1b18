"""The Rich console every command prints through.

On a terminal it is Rich's own (the terminal's width). Piped or redirected (`trdr sessions | less`,
`> out.txt`), Rich would cut every table to `$COLUMNS` (80 when unset) and end long cells with `…`; here
a table is printed as wide as its content instead, so no cell is cut, and no line carries the padding
of the table's widest row (trailing spaces are dropped). Other text still wraps at `$COLUMNS`
(default 80).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table


class CommandConsole(Console):
    """A Console whose tables are never cut when the output is not a terminal."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        width = self.width
        if self.is_terminal:
            super().print(*objects, **kwargs)
            return
        tables = [o for o in objects if isinstance(o, Table)]
        need = max((Measurement.get(self, self.options.update_width(10**6), t).maximum for t in tables),
                   default=0)
        if need > width:  # print(width=…) cannot go beyond the console's own width: widen it for this call
            self.width = need
        try:
            with self.capture() as captured:
                super().print(*objects, **kwargs)
        finally:
            self.width = width
        self.file.write("\n".join(line.rstrip(" ") for line in captured.get().split("\n")))


def command_console(**kwargs: Any) -> Console:
    """The console for a command's output (`kwargs` go to `rich.console.Console`)."""
    return CommandConsole(**kwargs)
