"""Coverage per package from coverage.py's JSON report; fails when an algorithm package is under 90 %.

    python .ci/coverage_by_package.py coverage.json

The algorithm packages (PRD §9.1: ≥ 90 %) are `trading`, `agents` and `market/indicators.py`; every
other package is reported only.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

FLOORS = {"trdr_tui/trading": 90.0, "trdr_tui/agents": 90.0, "trdr_tui/market/indicators.py": 90.0}


def package(path: str) -> str:
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else path


def main(report: str) -> int:
    files = json.loads(Path(report).read_text(encoding="utf-8"))["files"]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path, data in files.items():
        summary = data["summary"]
        for key in {package(path), *(floor for floor in FLOORS if path.startswith(floor))}:
            totals[key][0] += summary["covered_lines"]
            totals[key][1] += summary["num_statements"]
    failed = []
    print(f"{'package':<34} {'stmts':>6} {'cover':>7}")
    for key in sorted(totals):
        covered, stmts = totals[key]
        pct = 100.0 * covered / stmts if stmts else 100.0
        floor = FLOORS.get(key)
        note = "" if floor is None else f"  (floor {floor:.0f} %)"
        print(f"{key:<34} {stmts:>6} {pct:>6.1f}%{note}")
        if floor is not None and pct < floor:
            failed.append(f"{key} {pct:.1f}% < {floor:.0f}%")
    if failed:
        print("coverage under the floor: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
