"""work.py: every kind of work message, as the queue carries it and as the app reads it back."""

from __future__ import annotations

import json

import pytest

from proactive_bot import clock, work
from proactive_bot.references import StoredReference
from proactive_bot.teams.rows import RosterMember

REFERENCE = {
    "bot": {"id": "28:bot"},
    "channelId": "msteams",
    "serviceUrl": "https://smba.example/",
    "conversation": {"id": "a:1"},
    "user": {"id": "29:1"},
}


def on_the_wire(item: work.Work) -> work.Work:
    return work.parse(json.loads(json.dumps(item.to_message())))


@pytest.mark.parametrize(
    "item",
    [
        work.PageWork(notification="n"),
        work.StartWork(notification="n"),
        work.PostWork(notification="n"),
        work.RosterWork(team="19:t"),
        work.RosterWork(team="19:t", failures=2),
        work.EditWork(notification="n", shard=3, version=2),
        work.RecallWork(notification="n", shard=0),
    ],
)
def test_each_kind_reads_back_as_it_was_written(item):
    assert on_the_wire(item) == item


def test_a_batch_carries_references_and_roster_members_apart():
    member = RosterMember.from_json({"id": "29:m", "tenantId": "t", "serviceUrl": "https://smba.example/"})
    batch = work.BatchWork(
        notification="n", recipients=(StoredReference.from_reference(REFERENCE, clock.now()), member)
    )

    message = batch.to_message()
    again = on_the_wire(batch)

    assert (message["kind"], message["recipients"], len(message["members"])) == ("batch", [REFERENCE], 1)
    assert isinstance(again, work.BatchWork)
    assert [type(r) for r in again.recipients] == [StoredReference, RosterMember]


def test_messages_written_before_the_work_module_still_parse():
    """The wire format is the one the queue already holds (byte for byte where it can be)."""
    old = {
        '{"kind":"page","notification":"n"}': work.PageWork(notification="n"),
        '{"kind":"roster","team":"19:t","failures":0}': work.RosterWork(team="19:t"),
        '{"kind":"recall","notification":"n","shard":4,"version":1}': work.RecallWork(
            notification="n", shard=4, version=1
        ),
    }
    for raw, expected in old.items():
        assert work.parse(json.loads(raw)) == expected
    assert json.dumps(work.PageWork(notification="n").to_message(), separators=(",", ":")) == (
        '{"kind":"page","notification":"n"}'
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"kind": "pgae", "notification": "n"}, "unknown work kind 'pgae'"),
        ({"kind": "Page", "notification": "n"}, "unknown work kind 'Page'"),
        ({"notification": "n"}, "unknown work kind None"),
        ({"kind": ["page"], "notification": "n"}, "unknown work kind"),
        ([1, 2], "expected an object"),
        ({"kind": "page"}, "'notification' id"),
        ({"kind": "edit", "notification": "n", "shard": True}, "shard"),
        ({"kind": "batch", "notification": "n", "recipients": [{}]}, "conversation reference"),
    ],
)
def test_an_unknown_or_misspelt_kind_is_refused_with_its_reason(message, reason):
    with pytest.raises(work.InvalidWork, match=reason.replace("[", r"\[")):
        work.parse(message)


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "item",
    [
        work.PageWork(notification="n", traceparent=TRACEPARENT),
        work.StartWork(notification="n", traceparent=TRACEPARENT),
        work.PostWork(notification="n", traceparent=TRACEPARENT),
        work.BatchWork(notification="n", recipients=(), traceparent=TRACEPARENT),
        work.RosterWork(team="19:t", traceparent=TRACEPARENT),
        work.EditWork(notification="n", shard=3, version=2, traceparent=TRACEPARENT),
        work.RecallWork(notification="n", shard=0, traceparent=TRACEPARENT),
    ],
)
def test_every_kind_may_carry_the_trace_it_belongs_to(item):
    assert item.to_message()["traceparent"] == TRACEPARENT
    assert on_the_wire(item) == item


def test_without_a_trace_the_wire_is_as_before_and_a_bad_traceparent_is_no_reason_to_poison():
    assert "traceparent" not in work.PageWork(notification="n").to_message()

    assert work.parse({"kind": "page", "notification": "n"}) == work.PageWork(notification="n")
    assert work.parse({"kind": "page", "notification": "n", "traceparent": 7}) == work.PageWork(notification="n")


async def test_telemetry_off_puts_no_traceparent_on_the_queue():
    class Queue:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send_message(self, content, visibility_timeout=None):
            self.sent.append(content)
            return type("Sent", (), {"id": "m", "pop_receipt": "p"})()

    queue = Queue()
    await work.WorkQueue(queue).put(work.PageWork(notification="n"))  # type: ignore[arg-type]

    assert json.loads(queue.sent[0]) == {"kind": "page", "notification": "n"}
