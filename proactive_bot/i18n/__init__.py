"""The bot's languages: which one a user gets, its texts, and how it writes dates.

- `locales`: a channel's or user's locale tag ("de-DE", "zh-cn") -> a language we speak; names
  users type for a language (`language de`, `language 中文`).
- `catalog`: `text(language, key, **fields)`, the bot's texts from catalogs/<language>.json,
  English where a language lacks a text.
- `dates`: days, weekdays and lists in the language (Babel's CLDR data, loaded on first use).

Adding a language: see the README ("Languages").
"""

from .catalog import text
from .locales import DEFAULT, SUPPORTED, language_named, negotiate

__all__ = ["DEFAULT", "SUPPORTED", "language_named", "negotiate", "text"]
