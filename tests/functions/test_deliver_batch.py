"""deliver_batch/: the internal work queue; anything it cannot read goes to its poison queue."""

from __future__ import annotations

import json
import logging

import pytest

from proactive_bot import clock
from proactive_bot.notifications.contract import validate
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


# Work kinds naming a notification that exists: a single-user one and a broadcast, recorded
# directly (as queue_notify and the front door do) but never started.
SINGLE = "wq-single"
BROADCAST = "wq-broadcast"


@pytest.fixture
async def recorded(app):
    for document in (
        {"id": SINGLE, "to": {"channelId": "msteams", "userId": "29:nobody"}, "text": "x"},
        {"id": BROADCAST, "to": {"all": True, "channelId": "nowhere"}, "text": "x"},
    ):
        await app.notifications.create(validate(document), clock.now(), "test")


@pytest.mark.parametrize(
    ("work", "reason"),
    [
        ({"kind": "batch", "notification": BROADCAST, "recipients": "abc"}, "list"),
        ({"kind": "batch", "notification": BROADCAST, "recipients": [], "members": {"id": "29:x"}}, "list"),
        ({"kind": "batch", "notification": BROADCAST, "members": [{}]}, "roster member"),
        ({"kind": "batch", "notification": BROADCAST, "members": [1]}, "roster member"),
        ({"kind": "batch", "notification": BROADCAST, "recipients": [1]}, "conversation reference"),
        ({"kind": "batch", "notification": BROADCAST, "recipients": [{"conversation": "c"}]}, "conversation reference"),
        ({"kind": "batch", "notification": BROADCAST, "recipients": [{}]}, "conversation reference"),
        ({"kind": "batch", "notification": "never-accepted", "recipients": []}, "no notification"),
        ({"kind": "release", "notification": "never-accepted"}, "no notification"),
        ({"kind": "post", "notification": "never-accepted"}, "no notification"),
        ({"kind": "post", "notification": SINGLE}, "teamChannel"),
        ({"kind": "page", "notification": SINGLE}, "broadcast"),
        ({"kind": "roster", "team": 7}, "needs a 'team' id"),
        ({"notification": BROADCAST}, "unknown work kind"),
        ({"kind": "page", "notification": ""}, "no notification"),
        ({"kind": "page", "notification": "x" * 2000}, "no notification"),
        ({"kind": "recall", "notification": BROADCAST}, "shard"),
        ({"kind": "recall", "notification": BROADCAST, "shard": "one"}, "shard"),
        ({"kind": "recall", "notification": BROADCAST, "shard": 99}, "shard"),
        ({"kind": "recall", "notification": BROADCAST, "shard": None}, "shard"),
        ({"kind": "edit", "notification": BROADCAST, "shard": [1]}, "shard"),
        ({"kind": "edit", "notification": BROADCAST, "shard": 1.5}, "shard"),
        ({"kind": "recall", "notification": "never-accepted", "shard": 0}, "no notification"),
        ({"kind": "edit", "notification": 5, "shard": 0}, "expected an object"),
        ({"kind": "recall", "notification": "", "shard": 0}, "no notification"),
    ],
)
async def test_malformed_work_kinds_are_poisoned_with_a_reason(app, channel, caplog, recorded, work, reason):
    """Every kind the work queue carries (page, batch, release, post, roster, recall, edit), each
    malformed its own way: poisoned with its reason, nothing sent, no exception for the host to retry."""
    caplog.set_level(logging.ERROR)
    raw = json.dumps(work).encode()

    outputs = await invoke.queue("deliver_batch", raw)

    assert outputs["poison"].value == raw.decode()
    assert reason in caplog.text
    assert channel.texts() == []
    work_queue = app.queues.get_queue_client(app.settings.work_queue)
    assert await work_queue.peek_messages(max_messages=32) == []  # nothing handed on either
