"""The bot's texts, one JSON catalog per language (catalogs/<language>.json).

Why not gettext .po/.mo: a .mo is a compiled artefact (a build step before each deploy, or a
binary committed beside its source), and reading .po at run time means importing Babel's reader
(~60 ms on a cold start, README "Languages"). A JSON object loads with the json module every
function already imports, in well under a millisecond, and a test checks that every catalog has
the English catalog's keys with the same {fields}.

A value is a `str.format` template with named fields, or, for a text that depends on a number, an
object of CLDR plural categories ({"one": ..., "other": ...}) chosen by the field `count`.
Fields are data: a template is ours, what fills it is never read as a template.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from .locales import DEFAULT, SUPPORTED

_CATALOGS = os.path.join(os.path.dirname(__file__), "catalogs")
Template = str | dict[str, str]


@cache
def catalog(language: str) -> dict[str, Template]:
    """The catalog of `language` ({} for one we have none for)."""
    if language not in SUPPORTED:  # also keeps a tag from naming another path
        return {}
    # A plain file read: importlib.resources would add ~15 ms of imports to every cold start.
    with open(os.path.join(_CATALOGS, f"{language}.json"), encoding="utf-8") as source:
        loaded: dict[str, Template] = json.load(source)
    return loaded


def text(language: str, key: str, **fields: Any) -> str:
    """The text `key` in `language` (English if that language lacks it), filled with `fields`."""
    template = catalog(language).get(key)
    if template is None:
        language, template = DEFAULT, catalog(DEFAULT)[key]  # KeyError: a key no catalog has is a bug
    if isinstance(template, dict):
        template = template.get(plural_category(language, fields["count"])) or template["other"]
    return template.format(**fields)


def plural_category(language: str, count: int) -> str:
    # CLDR's rules for the languages we have: Chinese has one form; English and German "one" for 1.
    if language.startswith("zh"):
        return "other"
    return "one" if count == 1 else "other"
