"""Secrets out of the logs: the app's own, and anything shaped like a token or a key.

Our code never logs a secret on purpose; this is the net under it, for library messages and
exception texts we do not write. The filter sits on the root logger's handlers (where the
Functions worker, and pytest, collect records), so it sees every logger's records.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
_PATTERNS = [
    # A JWT anywhere (bearer tokens, Bot Framework tokens): three base64url parts, the first a
    # JSON header ("eyJ" is how '{"' starts in base64).
    (re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"), MASK),
    (re.compile(r"(?i)(\bbearer\s+)[\w\-.~+/]+=*"), rf"\1{MASK}"),
    (
        re.compile(
            r"(?i)(\b(?:client_secret|password|access_token|refresh_token|id_token|secret)\b[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+"
        ),
        rf"\1{MASK}",
    ),
    (re.compile(r"(?i)(\b(?:AccountKey|SharedAccessSignature|sig)=)[^;&\s\"']+"), rf"\1{MASK}"),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Short values would mask ordinary words; real secrets are long.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


def install(secrets: Iterable[str] = (), logger: logging.Logger | None = None) -> RedactingFilter:
    """Put one RedactingFilter on every handler of `logger` (the root logger by default)."""
    logger = logger or logging.getLogger()
    redactor = RedactingFilter(secrets)
    for handler in logger.handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(redactor)
    return redactor


def storage_secrets(connection_string: str) -> list[str]:
    """The key or SAS token inside a storage connection string."""
    secrets = []
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() in ("accountkey", "sharedaccesssignature") and value:
            secrets.append(value.strip())
    return secrets
