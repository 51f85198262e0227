"""The long-task queue contract: what the turn enqueues and what the queue function accepts."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from proactive_bot.activities import message
from proactive_bot.delivery.lanes import Lane
from proactive_bot.delivery.outcome import Outcome
from proactive_bot.tasks import InvalidTask, LongTasks, Task, parse_task_message
from tests import activities
from tests.support.lanes import Asked

TASK = Task(
    kind="report",
    channel_id="msteams",
    conversation_id="a:1conv",
    user_id="29:1user",
    zone="Europe/Berlin",
    id="t1",
    requested_at=datetime(2026, 11, 26, 10, tzinfo=UTC),
)


def test_a_task_round_trips_through_its_message():
    body = TASK.to_message()

    assert json.loads(body) == {
        "v": 1,
        "id": "t1",
        "kind": "report",
        "channelId": "msteams",
        "conversationId": "a:1conv",
        "userId": "29:1user",
        "zone": "Europe/Berlin",
        "requestedAt": "2026-11-26T10:00:00+00:00",
    }
    assert parse_task_message(body.encode()) == TASK


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"v": 2}, "v: version 2 is not 1"),
        ({"kind": None}, "kind: expected str"),
        ({"extra": 1}, "extra: unknown field"),
        ({"requestedAt": "yesterday"}, "requestedAt: not an ISO 8601 time"),
    ],
)
def test_malformed_tasks_say_what_is_wrong(change, reason):
    document = {**json.loads(TASK.to_message()), **change}
    with pytest.raises(InvalidTask, match=reason):
        parse_task_message(json.dumps(document).encode())


@pytest.mark.parametrize("body", [b"{nope", b"[1]", b"x" * 9000])
def test_what_is_not_a_task_at_all(body):
    with pytest.raises(InvalidTask):
        parse_task_message(body)


def test_the_language_to_answer_in_travels_with_the_task_and_may_be_absent():
    german = Task(**{**TASK.__dict__, "locale": "de"})

    assert json.loads(german.to_message())["locale"] == "de"
    assert parse_task_message(german.to_message().encode()) == german
    assert "locale" not in json.loads(TASK.to_message())  # as messages enqueued before it read
    with pytest.raises(InvalidTask, match="locale: expected string or null"):
        parse_task_message(json.dumps({**json.loads(german.to_message()), "locale": 7}).encode())


async def test_a_tasks_result_is_sent_urgent_in_its_users_tenant(engine_factory, monkeypatch):
    engine = await engine_factory()
    [user] = await engine.users(1)
    asked = Asked(engine.limiter, monkeypatch)

    async def report(task: Task) -> list[dict[str, Any]]:
        return [message("your report")]

    queue: Any = None  # run() never enqueues
    tasks = LongTasks(queue, engine.references, engine.delivery, {"report": report})
    task = dataclasses.replace(TASK, conversation_id=user["conversation"]["id"], user_id=user["user"]["id"])

    result = await tasks.run(task)

    assert result is not None and result.outcome is Outcome.SENT
    assert asked.lanes() == Counter({(Lane.URGENT, activities.TENANT): 1})
