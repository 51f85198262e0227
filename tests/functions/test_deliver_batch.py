"""deliver_batch/: the internal work queue; anything it cannot read goes to its poison queue."""

from __future__ import annotations

import logging

import pytest

from tests.functions import invoke


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "Expecting value"),
        (b"[1, 2]", "expected an object"),
        (b'{"kind": "page", "notification": "never-accepted"}', "no notification"),
        (b'{"kind": "shred", "notification": "x"}', "unknown work kind"),
    ],
)
async def test_unreadable_work_is_poisoned_with_a_reason(app, channel, caplog, raw, reason):
    caplog.set_level(logging.ERROR)

    outputs = await invoke.queue("deliver_batch", raw)

    assert outputs["poison"].value == raw.decode()
    assert reason in caplog.text
