"""JSON from outside (activities, queue messages): parsed strictly, so that what we accept we can
also store, send and log.

Python's json module takes things other parsers refuse or read differently, and a few inputs make
it raise something other than a decode error:

- NaN and Infinity (not JSON; they would go out again as invalid JSON),
- duplicate keys (the last wins here, the first elsewhere: a way to show one value to a validator
  and another to us),
- lone surrogates such as "\\ud800" (valid JSON, but not Unicode: UTF-8, and so Table Storage and
  the channels, cannot carry them),
- integers of more than 4,300 digits (ValueError) and deep nesting (RecursionError).
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # activities nest 5-6 levels, Adaptive Cards a dozen or so


class JsonInputError(ValueError):
    """The input is not JSON we accept; the message says why."""


def loads(raw: str | bytes) -> Any:
    try:
        document = json.loads(raw, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise JsonInputError(f"not JSON we accept: nested deeper than {MAX_DEPTH} levels") from None
    except JsonInputError:
        raise
    except UnicodeDecodeError as error:
        raise JsonInputError(f"not UTF-8 text: {error}") from None
    except ValueError as error:  # JSONDecodeError, or an integer too long to convert
        raise JsonInputError(f"not JSON: {error}") from None
    _check(document)
    return document


def _refuse_constant(name: str) -> Any:
    raise JsonInputError(f"not JSON we accept: {name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise JsonInputError(f"not JSON we accept: the key {_first_repeat(pairs)!r} appears twice in one object")
    return document


def _first_repeat(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    raise ValueError("no key appears twice")  # only called when one does


def _check(document: Any) -> None:
    """Depth and lone surrogates, in one walk without recursion."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise JsonInputError(f"not JSON we accept: nested deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key)
                pending.append((item, depth + 1))


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonInputError("not JSON we accept: a string holds a lone surrogate (not Unicode)") from None
