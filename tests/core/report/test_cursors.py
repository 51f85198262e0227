"""report.cursors: a continuation travels as an opaque token; a forged one is a clear error."""

from __future__ import annotations

import pytest

from proactive_bot.report import cursors


def test_a_continuation_round_trips():
    continuation = {"PartitionKey": "town-hall%S03", "RowKey": "r|u|29:1"}

    assert cursors.decode(cursors.encode(continuation)) == continuation
    assert cursors.encode(None) is None and cursors.decode("") is None


@pytest.mark.parametrize("token", ["not base64!", "WzFd", "bnVsbA"])  # junk, [1], null
def test_anything_else_is_a_bad_cursor(token):
    with pytest.raises(cursors.BadCursor, match="not one this API handed out"):
        cursors.decode(token)
