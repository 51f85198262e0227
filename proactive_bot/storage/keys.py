"""Turning channel ids into Azure Table PartitionKey/RowKey values.

Channel ids are arbitrary strings (Teams: `a:1Xyz...`, `19:abc@thread.tacv2;messageid=1`), but a
table key may not hold `/ \\ # ?` or control characters and is limited to 1 KiB. The encoding is
deterministic and one-to-one, so the same id always finds the same row and two ids never share
one; the original id is stored beside the key.
"""

from __future__ import annotations

import hashlib

# Forbidden by Azure Tables, plus `%` (our escape character) and `'` (it breaks OData literals
# in tools that build filters by hand).
_ESCAPED = frozenset("/\\#?%'") | frozenset(map(chr, [*range(0x20), *range(0x7F, 0xA0)]))
# Well under the 1 KiB limit, leaving room for the prefixes we put in front of keys.
_MAX_KEY_BYTES = 512
# Escapes are `%` + two hex digits, or `%u` + four for a lone surrogate, so `%H` never collides.
_HASHED_PREFIX = "%H"


def table_key(value: str) -> str:
    """Encode `value` for use in a PartitionKey or RowKey."""
    encoded = "".join(_escape(ch) for ch in value)
    if len(encoded.encode("utf-8")) <= _MAX_KEY_BYTES:
        return encoded
    return _HASHED_PREFIX + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _escape(ch: str) -> str:
    if ch in _ESCAPED:
        return f"%{ord(ch):02X}"
    if "\ud800" <= ch <= "\udfff":
        # JSON can carry a lone surrogate but UTF-8 cannot, so no key may hold one. Inputs are
        # refused at the edges (json_input); this keeps a lookup for one a plain miss.
        return f"%u{ord(ch):04X}"
    return ch
