"""From a locale tag to a language the bot speaks.

Channels send BCP 47 tags in every activity's `locale`, in any case and form: Teams `zh-cn`,
`de-de`, `en-us`; browsers `zh-CN`, `zh-Hans-CN`, `de`. A tag maps to the first language whose
primary subtag it has; Chinese only to Simplified Chinese when it is not a Traditional region or
script (zh-TW, zh-HK, zh-MO, zh-Hant: no catalog yet, so English).
"""

from __future__ import annotations

DEFAULT = "en"
SUPPORTED = ("en", "de", "zh-Hans")  # one catalog each in catalogs/
_TRADITIONAL = frozenset({"hant", "tw", "hk", "mo"})

# What people type after `language` (lower case): codes, English names and each language's own.
_NAMES = {
    "en": "en",
    "english": "en",
    "englisch": "en",
    "英文": "en",
    "英语": "en",
    "de": "de",
    "german": "de",
    "deutsch": "de",
    "德语": "de",
    "德文": "de",
    "zh": "zh-Hans",
    "zh-hans": "zh-Hans",
    "zh-cn": "zh-Hans",
    "chinese": "zh-Hans",
    "chinesisch": "zh-Hans",
    "中文": "zh-Hans",
    "汉语": "zh-Hans",
    "简体中文": "zh-Hans",
}


def supported(tag: str | None) -> str | None:
    """The language we speak for a locale tag, or None if we have no catalog for it."""
    parts = (tag or "").strip().replace("_", "-").lower().split("-")
    if parts[0] == "zh":
        return None if _TRADITIONAL & set(parts[1:]) else "zh-Hans"
    return parts[0] if parts[0] in SUPPORTED else None


def negotiate(*tags: str | None) -> str:
    """The first of `tags` (most preferred first) we have a catalog for; English otherwise."""
    for tag in tags:
        if language := supported(tag):
            return language
    return DEFAULT


def language_named(name: str) -> str | None:
    """The language a user means by `name` ("de", "Deutsch", "中文", "zh-CN"), or None."""
    key = name.strip().lower()
    return _NAMES.get(key) or supported(key) if key else None
