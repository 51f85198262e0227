"""The README's settings table, made from proactive_bot.settings_catalog.SETTINGS (a test keeps the two
in agreement). Development only: the app never needs it."""

from __future__ import annotations

from proactive_bot.settings_catalog import SETTINGS


def markdown_table() -> str:
    """The README's settings table (`python -m devtools.settings_table` prints it)."""
    rows = ["| setting | default | secret | required | meaning |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "empty"
        rows.append(f"| `{s.name}` | {default} | {_yes(s.secret)} | {_yes(s.required)} | {s.meaning} |")
    return "\n".join(rows) + "\n"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


if __name__ == "__main__":
    print(markdown_table(), end="")
