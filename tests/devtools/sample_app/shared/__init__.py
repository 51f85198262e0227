"""Helpers shared by the sample functions: they record what they saw for the tests to read."""

import json
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent


def record(function: str, **fields: object) -> None:
    """Append one JSON line to <app root>/_out/<function>.jsonl (tests copy the app first)."""
    out = APP_ROOT / "_out"
    out.mkdir(exist_ok=True)
    with (out / f"{function}.jsonl").open("a", encoding="utf-8") as file:
        file.write(json.dumps(fields) + "\n")
