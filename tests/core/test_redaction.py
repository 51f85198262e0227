"""Secrets out of the logs: the app's own secrets and anything shaped like a token or key."""

from __future__ import annotations

import logging

import pytest

from proactive_bot.redaction import MASK, install, redact, storage_secrets

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer"),
        ("authorization=bearer opaque-token_123", "authorization=bearer"),
        (f"token was {JWT} here", "token was"),
        ("grant_type=client_credentials&client_secret=s3cr3t~value&scope=x", "scope=x"),
        ('{"access_token": "abc.def", "expires_in": 3599}', '"expires_in": 3599'),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5a2V5==;EndpointSuffix=core",
            "AccountName=acct",
        ),
        ("https://acct.queue.core.windows.net/q?sv=2024&sig=abc%2Fdef&se=1", "sv=2024"),
    ],
)
def test_tokens_keys_and_passwords_are_masked(text, kept):
    cleaned = redact(text)

    assert MASK in cleaned and kept in cleaned
    for secret in (JWT, "opaque-token_123", "s3cr3t~value", "abc.def", "a2V5a2V5", "abc%2Fdef"):
        assert secret not in cleaned


def test_ordinary_log_lines_are_untouched():
    line = "notification build-42 (queue message 1f2e): Summary(recipients=1, sent=1, gone=0, failed=0)"
    assert redact(line) == line


def test_the_filter_cleans_any_loggers_records_and_tracebacks(caplog):
    caplog.set_level(logging.INFO)
    install(["my-app-password-123", *storage_secrets("AccountName=a;AccountKey=c2VjcmV0a2V5")])
    library = logging.getLogger("some.library")

    library.info("posting client_id=x with password %s", "my-app-password-123")
    library.info("connecting with key c2VjcmV0a2V5")
    try:
        raise RuntimeError("failed with header Bearer " + JWT)
    except RuntimeError:
        library.exception("request failed")

    assert "my-app-password-123" not in caplog.text and "c2VjcmV0a2V5" not in caplog.text
    assert JWT not in caplog.text and "request failed" in caplog.text
