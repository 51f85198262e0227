"""Cold-start import cost of each function folder, against importing its dependencies alone.

`python -m bench.import_time [--runs 9] [--app-root .]`

A fresh interpreter imports each function folder (what the Functions worker does on cold start)
under `python -X importtime`, which reports each module's own ("self") import time. The ratio
is all of it ÷ all but our own modules (the folder and `proactive_bot.*`): what importing the
function costs against importing its dependencies alone. Measured inside one process, so other
load on the machine shifts both sides alike (wall-clock comparisons across processes varied by
±25 % on this 2-core machine). Medians over --runs interpreters; the layout issue's bound is 1.2.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path


def self_times(folder: str, root: Path) -> tuple[int, int]:
    """(every module's self time, our modules' self time) in µs, for one cold import."""
    report = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {folder}"], cwd=root, capture_output=True, text=True, check=True
    ).stderr
    total = ours = 0
    for line in report.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        total += int(self_us)
        if name.split(".")[0] in ("proactive_bot", folder):
            ours += int(self_us)
    return total, ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_time", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--app-root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    root = args.app_root.resolve()
    folders = sorted(p.parent.name for p in root.glob("*/function.json"))
    print(f"app root {root}; medians of {args.runs} cold imports each")
    print(f"{'function':<20} {'import (ms)':>12} {'ours (ms)':>10} {'ratio':>7}")
    ratios = []
    for folder in folders:
        runs = [self_times(folder, root) for _ in range(args.runs)]
        ratio = statistics.median(total / (total - ours) for total, ours in runs)
        ratios.append(ratio)
        total_ms = statistics.median(total for total, _ in runs) / 1000
        ours_ms = statistics.median(ours for _, ours in runs) / 1000
        print(f"{folder:<20} {total_ms:>12.1f} {ours_ms:>10.1f} {ratio:>7.3f}")
    print(f"ratio range {min(ratios):.3f}-{max(ratios):.3f} (bound 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
