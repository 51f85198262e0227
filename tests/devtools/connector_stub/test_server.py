"""The Connector stub's server: routes, records, scripted failures, latency, waiting, real
clients, console lines."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from yarl import URL

from devtools.connector_stub import (
    CREATE,
    DELETE,
    MEMBERS,
    REPLY,
    SEND,
    UNKNOWN,
    UPDATE,
    ConnectorStub,
    ReceivedRequest,
    console_line,
)

from .client import conversation_url, message, post

pytestmark = pytest.mark.timeout(60)

TEAMS_IDS = [
    "a:1Xyz-AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789",
    "19:abc123def456@thread.tacv2",
    "19:abc123def456@thread.tacv2;messageid=1616433131190",
    "29:1a-B/c+d=e",  # "/" and "+" must survive the round trip too
]


# ---- routes and records ----------------------------------------------------------------------


@pytest.mark.parametrize("conversation_id", TEAMS_IDS)
async def test_send_to_conversation_records_decoded_id(
    stub: ConnectorStub, http: aiohttp.ClientSession, conversation_id: str
) -> None:
    status, payload, _ = await post(
        http,
        conversation_url(stub, conversation_id, "activities"),
        message("hello"),
        headers={"Authorization": "Bearer abc"},
    )

    assert status == 200 and isinstance(payload["id"], str) and payload["id"]
    [record] = stub.received
    assert record.route == SEND
    assert record.method == "POST"
    assert record.conversation_id == conversation_id
    assert record.activity_id is None
    assert record.body == message("hello")
    assert record.authorization == "Bearer abc"
    assert record.status == 200 and record.response_id == payload["id"]
    assert record.delivered and not record.throttled
    assert "%3A" in record.path  # the path is kept as sent


@pytest.mark.parametrize("conversation_id", TEAMS_IDS)
async def test_reply_to_activity_records_conversation_and_target(
    stub: ConnectorStub, http: aiohttp.ClientSession, conversation_id: str
) -> None:
    url = conversation_url(stub, conversation_id, "activities", "1:reply-to;id=7")
    status, payload, _ = await post(http, url, message("a reply"))

    assert status == 200 and payload["id"]
    [record] = stub.received
    assert (record.route, record.conversation_id, record.activity_id) == (
        REPLY,
        conversation_id,
        "1:reply-to;id=7",
    )
    assert record.authorization is None
    assert stub.texts(conversation_id) == ["a reply"]


async def test_each_send_gets_a_new_activity_id(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    url = conversation_url(stub, "a:1", "activities")
    ids = [(await post(http, url, message(str(n))))[1]["id"] for n in range(3)]

    assert len(set(ids)) == 3
    assert [r.response_id for r in stub.delivered()] == ids


async def test_update_and_delete_answer_200_and_are_not_new_activities(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    conversation = "19:x@thread.tacv2"
    _, sent, _ = await post(http, conversation_url(stub, conversation, "activities"), message("first"))
    url = conversation_url(stub, conversation, "activities", sent["id"])

    async with http.put(url, json=message("edited")) as response:
        assert response.status == 200
        assert await response.json() == {"id": sent["id"]}
    assert [s.activity["text"] for s in stub.shown(conversation)] == ["edited"]
    async with http.delete(url) as response:
        assert response.status == 200

    assert [(r.route, r.activity_id, r.status) for r in stub.received[1:]] == [
        (UPDATE, sent["id"], 200),
        (DELETE, sent["id"], 200),
    ]
    assert stub.received[1].text == "edited"
    assert stub.texts() == ["first"]  # edits and deletions are not new activities
    assert stub.shown(conversation) == []
    assert len(stub.changes(UPDATE)) == len(stub.changes(DELETE)) == 1


async def test_update_or_delete_of_an_unknown_or_deleted_activity_is_404(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    conversation = "a:1"
    _, sent, _ = await post(http, conversation_url(stub, conversation, "activities"), message("hi"))
    known = conversation_url(stub, conversation, "activities", sent["id"])
    unknown = conversation_url(stub, conversation, "activities", "1700000999999")

    async with http.put(unknown, json=message("x")) as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "ActivityNotFound"
    async with http.delete(known) as response:
        assert response.status == 200
    async with http.delete(known) as response:
        assert response.status == 404
    async with http.put(known, json=message("x")) as response:
        assert response.status == 404


async def test_refused_changes_answer_405_like_direct_line_until_allowed(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    _, sent, _ = await post(http, conversation_url(stub, "dl", "activities"), message("hi"))
    url = conversation_url(stub, "dl", "activities", sent["id"])
    stub.refuse_changes("dl")

    async with http.put(url, json=message("x")) as response:
        assert response.status == 405
    async with http.delete(url) as response:
        assert response.status == 405
        assert (await response.json())["error"]["code"] == "MethodNotAllowed"
    stub.allow_changes("dl")
    async with http.delete(url) as response:
        assert response.status == 200


async def test_edits_and_deletions_count_against_the_rate_limits(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    stub.limits(per_conversation=None, global_=[(2, 60.0)])
    _, sent, _ = await post(http, conversation_url(stub, "a:1", "activities"), message("hi"))
    url = conversation_url(stub, "a:1", "activities", sent["id"])

    async with http.put(url, json=message("x")) as response:
        assert response.status == 200
    async with http.delete(url) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1


async def test_create_conversation_returns_resource_and_delivers_initial_activity(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    members = [{"id": "29:user", "name": "Ada"}]
    params = {
        "bot": {"id": "28:bot"},
        "members": members,
        "tenantId": "t1",
        "activity": message("welcome"),
    }
    status, payload, _ = await post(http, stub.url + "v3/conversations", params)

    assert status == 200
    assert set(payload) == {"id", "activityId", "serviceUrl"}
    assert payload["serviceUrl"] == stub.url and payload["activityId"]
    conversation_id = payload["id"]
    [record] = stub.received
    assert (record.route, record.conversation_id) == (CREATE, conversation_id)
    assert stub.texts(conversation_id) == ["welcome"]

    async with http.get(conversation_url(stub, conversation_id, "members")) as response:
        assert response.status == 200
        assert await response.json() == members


async def test_create_conversation_without_activity_delivers_nothing(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    status, payload, _ = await post(http, stub.url + "v3/conversations", {"bot": {"id": "b"}})

    assert status == 200 and payload["activityId"] is None
    assert stub.delivered() == []


async def test_members_lists_what_was_set_or_nothing(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    stub.set_members("19:team@thread.tacv2", [{"id": "29:a"}, {"id": "29:b"}])

    async with http.get(conversation_url(stub, "19:team@thread.tacv2", "members")) as response:
        assert response.status == 200
        assert await response.json() == [{"id": "29:a"}, {"id": "29:b"}]
    async with http.get(conversation_url(stub, "a:unknown", "members")) as response:
        assert response.status == 200
        assert await response.json() == []
    assert [r.route for r in stub.received] == [MEMBERS, MEMBERS]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "v3/nothing"),
        ("GET", "v3/conversations/a%3A1/activities"),  # known path, unsupported method
        ("PATCH", "v3/conversations/a%3A1/activities/1"),
        ("POST", "v3/conversations//activities"),  # empty conversation id
    ],
)
async def test_unknown_routes_answer_404_in_connector_shape(
    stub: ConnectorStub, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    async with http.request(method, URL(stub.url + path, encoded=True), json={}) as response:
        assert response.status == 404
        body = await response.json()

    assert body["error"]["code"] == "NotFound" and body["error"]["message"]
    [record] = stub.received
    assert (record.route, record.status, record.error_code) == (UNKNOWN, 404, "NotFound")


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b"\xff\xfe"])
async def test_bad_bodies_answer_400_bad_argument_and_are_recorded(
    stub: ConnectorStub, http: aiohttp.ClientSession, raw: bytes
) -> None:
    url = conversation_url(stub, "a:1", "activities")
    async with http.post(url, data=raw, headers={"Content-Type": "application/json"}) as response:
        assert response.status == 400
        body = await response.json()

    assert body["error"]["code"] == "BadArgument"
    [record] = stub.received
    assert (record.route, record.conversation_id, record.status) == (SEND, "a:1", 400)
    assert not record.delivered


async def test_base_path_serves_under_a_teams_like_service_url(
    http: aiohttp.ClientSession,
) -> None:
    async with ConnectorStub(base_path="/amer/") as stub:
        assert stub.url.endswith("/amer/")
        status, _, _ = await post(http, conversation_url(stub, "a:1", "activities"), message("x"))
        root = URL(stub.url).with_path("/v3/conversations/a%3A1/activities", encoded=True)
        missing, _, _ = await post(http, root, message("y"))

    assert (status, missing) == (200, 404)
    assert stub.texts() == ["x"]


# ---- scripted failures -----------------------------------------------------------------------


async def test_scripted_429_with_retry_after_then_500_then_normal(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    stub.fail("a:1", statuses=[429, 500], retry_after=2.5)
    url = conversation_url(stub, "a:1", "activities")

    first = await post(http, url, message("1"))
    second = await post(http, url, message("2"))
    third = await post(http, url, message("3"))

    assert first[0] == 429 and first[2]["Retry-After"] == "3"
    assert first[1] == {"error": {"code": "Throttled", "message": "Too many requests."}}
    assert second[0] == 500 and second[1]["error"]["code"] == "ServiceError"
    assert "Retry-After" not in second[2]
    assert third[0] == 200
    assert [r.status for r in stub.received] == [429, 500, 200]
    assert [r.retry_after for r in stub.received] == [3, None, None]
    assert stub.throttled_count == 1
    assert stub.texts() == ["3"]


async def test_scripted_failures_for_one_conversation_leave_others_alone(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    stub.fail("a:target", statuses=[502])

    other, _, _ = await post(http, conversation_url(stub, "a:other", "activities"), message("o"))
    target, _, _ = await post(http, conversation_url(stub, "a:target", "activities"), message("t"))

    assert (other, target) == (200, 502)


async def test_scripted_failures_without_conversation_hit_the_next_requests_anywhere(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    stub.fail(statuses=[503, 412], retry_after=1)

    results = [await post(http, conversation_url(stub, f"a:{n}", "activities"), message("x")) for n in range(3)]

    assert [status for status, _, _ in results] == [503, 412, 200]
    assert results[0][2]["Retry-After"] == "1"
    assert results[1][1]["error"]["code"] == "PreconditionFailed"


async def test_scripted_429_without_retry_after_has_no_header(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    stub.fail("a:1", statuses=[429])

    status, _, headers = await post(http, conversation_url(stub, "a:1", "activities"), message("x"))

    assert status == 429 and "Retry-After" not in headers


@pytest.mark.parametrize(
    ("status", "code", "expected_code", "expected_message"),
    [
        (403, None, "ConversationBlockedByUser", "User blocked the conversation with the bot."),
        (
            403,
            "BotNotInConversationRoster",
            "BotNotInConversationRoster",
            "The bot is not part of the conversation roster.",
        ),
        (403, "BotDisabledByAdmin", "BotDisabledByAdmin", "The tenant admin disabled this bot."),
        (404, None, "ConversationNotFound", "Conversation not found."),
    ],
)
async def test_block_is_sticky_until_unblocked(
    stub: ConnectorStub,
    http: aiohttp.ClientSession,
    status: int,
    code: str | None,
    expected_code: str,
    expected_message: str,
) -> None:
    stub.block("a:gone", status=status, code=code)
    url = conversation_url(stub, "a:gone", "activities")

    answers = [await post(http, url, message(str(n))) for n in range(3)]
    elsewhere, _, _ = await post(http, conversation_url(stub, "a:fine", "activities"), message("f"))
    stub.unblock("a:gone")
    after, _, _ = await post(http, url, message("after"))

    expected = {"error": {"code": expected_code, "message": expected_message}}
    assert [(s, body) for s, body, _ in answers] == [(status, expected)] * 3
    assert (elsewhere, after) == (200, 200)
    assert stub.texts("a:gone") == ["after"]
    assert [r.error_code for r in stub.received[:3]] == [expected_code] * 3


async def test_expect_bearer_answers_401_without_the_token(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    stub.expect_bearer("s3cret")
    url = conversation_url(stub, "a:1", "activities")

    missing = await post(http, url, message("1"))
    wrong = await post(http, url, message("2"), headers={"Authorization": "Bearer nope"})
    right = await post(http, url, message("3"), headers={"Authorization": "Bearer s3cret"})

    assert [missing[0], wrong[0], right[0]] == [401, 401, 200]
    assert missing[1]["error"]["code"] == "Unauthorized"
    assert [r.authorization for r in stub.received] == [None, "Bearer nope", "Bearer s3cret"]
    assert stub.texts() == ["3"]


# ---- latency and ordering --------------------------------------------------------------------


async def test_latency_delays_answers_while_requests_overlap(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    stub.latency = 0.3
    url = conversation_url(stub, "a:1", "activities")
    answered: list[float] = []

    async def send(n: int) -> int:
        async with http.post(url, json=message(str(n))) as response:
            answered.append(time.monotonic())
            return response.status

    statuses = await asyncio.gather(*(send(n) for n in range(5)))

    assert statuses == [200] * 5
    received = [r.received_monotonic for r in stub.received]
    assert received == sorted(received)
    # Every request had arrived before the first answer left: they were in flight together.
    assert max(received) < min(answered)
    assert sorted(stub.texts(), key=int) == ["0", "1", "2", "3", "4"]


async def test_latency_holds_an_answer_while_later_requests_arrive(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    stub.latency = 1.0
    url = conversation_url(stub, "a:1", "activities")
    first = asyncio.create_task(post(http, url, message("first")))
    await stub.wait_for(1)
    first_answered_when_second_arrived: list[bool] = []

    def second_arrived(record: ReceivedRequest) -> bool:
        if record.text != "second":
            return False
        first_answered_when_second_arrived.append(first.done())
        return True

    waiting = asyncio.create_task(stub.wait_for(second_arrived))
    await asyncio.gather(first, post(http, url, message("second")), waiting)

    assert first_answered_when_second_arrived == [False]


# ---- waiting and inspection ------------------------------------------------------------------


async def test_wait_for_count_wakes_when_activities_arrive(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    waiting = asyncio.create_task(stub.wait_for(2, conversation_id="a:1", timeout=10))
    await asyncio.sleep(0)

    await post(http, conversation_url(stub, "a:2", "activities"), message("elsewhere"))
    await post(http, conversation_url(stub, "a:1", "activities"), message("one"))
    assert not waiting.done()
    await post(http, conversation_url(stub, "a:1", "activities"), message("two"))

    records = await waiting
    assert [r.text for r in records] == ["one", "two"]


async def test_wait_for_predicate_counts_requests_already_received(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    stub.fail("a:1", statuses=[429, 429])
    url = conversation_url(stub, "a:1", "activities")
    for _ in range(3):
        await post(http, url, message("x"))

    def throttled(record: ReceivedRequest) -> bool:
        return record.throttled

    records = await stub.wait_for(throttled, count=2, timeout=1)

    assert [r.status for r in records] == [429, 429]


async def test_wait_for_timeout_lists_what_was_received(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    await post(http, conversation_url(stub, "a:1", "activities"), message("only this"))

    with pytest.raises(AssertionError) as failure:
        await stub.wait_for(2, timeout=0.2)

    report = str(failure.value)
    assert "2 delivered activities" in report and "got 1" in report
    assert "only this" in report and "[a:1]" in report


async def test_wait_for_surfaces_a_broken_predicate(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    def broken(record: ReceivedRequest) -> bool:
        raise KeyError("oops")

    waiting = asyncio.create_task(stub.wait_for(broken, timeout=5))
    await asyncio.sleep(0)
    status, _, _ = await post(http, conversation_url(stub, "a:1", "activities"), message("x"))

    assert status == 200
    with pytest.raises(KeyError):
        await waiting


async def test_activities_filter_by_type_and_texts_and_clear(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    url = conversation_url(stub, "a:1", "activities")
    card = {"contentType": "application/vnd.microsoft.card.adaptive", "content": {}}
    await post(http, url, {"type": "typing"})
    await post(http, url, message("text"))
    await post(http, url, {"type": "message", "attachments": [card]})
    await post(http, conversation_url(stub, "a:2", "activities"), message("other"))

    assert [a["type"] for a in stub.activities("a:1", type=None)] == [
        "typing",
        "message",
        "message",
    ]
    assert stub.texts("a:1") == ["text", ""]
    assert stub.texts() == ["text", "", "other"]
    assert len(stub.activities("a:1")) == 2

    stub.clear()

    assert stub.received == [] and stub.activities() == [] and stub.throttled_count == 0
    await post(http, url, message("again"))
    assert stub.received[0].seq == 1


async def test_records_are_immutable(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    await post(http, conversation_url(stub, "a:1", "activities"), message("x"))

    with pytest.raises(AttributeError):
        stub.received[0].status = 500


async def test_control_routes_serve_other_processes(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    stub.fail("a:1", statuses=[429])
    url = conversation_url(stub, "a:1", "activities")
    await post(http, url, message("first"))
    await post(http, url, message("second"))

    async with http.get(stub.url + "_stub/received") as response:
        received = await response.json()
    async with http.get(stub.url + "_stub/received?since=1") as response:
        newer = await response.json()
    async with http.get(stub.url + "_stub/stats") as response:
        stats = await response.json()
    async with http.post(stub.url + "_stub/reset") as response:
        reset = await response.json()

    assert [(r["route"], r["conversation_id"], r["status"]) for r in received] == [
        (SEND, "a:1", 429),
        (SEND, "a:1", 200),
    ]
    assert received[1]["body"] == message("second") and received[1]["seq"] == 2
    assert [r["seq"] for r in newer] == [2]
    assert stats == {"received": 2, "delivered": 1, "throttled": 1, "updated": 0, "deleted": 0}
    assert reset == {"cleared": 2}
    assert stub.received == []  # control calls are not recorded


# ---- real clients ----------------------------------------------------------------------------


def _teams_reference(service_url: str, conversation_id: str) -> Any:
    from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference

    return ConversationReference(
        activity_id=None,
        channel_id="msteams",
        service_url=service_url,
        conversation=ConversationAccount(id=conversation_id, conversation_type="personal", tenant_id="tenant-1"),
        user=ChannelAccount(id="29:user", name="Ada"),
        bot=ChannelAccount(id="28:bot", name="Bot"),
    )


async def _continue(stub: ConnectorStub, conversation_id: str, text: str) -> list[Any]:
    from botbuilder.core import BotFrameworkAdapter, BotFrameworkAdapterSettings, TurnContext
    from botframework.connector.auth import ClaimsIdentity

    adapter = BotFrameworkAdapter(BotFrameworkAdapterSettings("", ""))
    responses: list[Any] = []

    async def callback(turn: TurnContext) -> None:
        responses.append(await turn.send_activity(text))

    await adapter.continue_conversation(
        _teams_reference(stub.url, conversation_id),
        callback,
        claims_identity=ClaimsIdentity({}, True),
    )
    return responses


async def test_botbuilder_proactive_send_lands_on_the_reply_route(stub: ConnectorStub) -> None:
    conversation_id = "a:1Xyz-_AbC;messageid=1616433131190"

    [response] = await _continue(stub, conversation_id, "Your report is ready")

    [record] = await stub.wait_for(1, conversation_id=conversation_id, timeout=5)
    assert record.route == REPLY
    assert record.activity_id  # the synthetic continuation event's id
    assert record.body["replyToId"] == record.activity_id
    assert record.body["conversation"]["id"] == conversation_id
    assert record.text == "Your report is ready"
    assert record.authorization is None  # empty credentials send no token
    assert response.id == record.response_id


async def test_botbuilder_sees_the_blocked_error_code(stub: ConnectorStub) -> None:
    from botbuilder.schema import ErrorResponseException

    stub.block("a:blocked")

    with pytest.raises(ErrorResponseException) as failure:
        await _continue(stub, "a:blocked", "hello?")

    assert failure.value.error.error.code == "ConversationBlockedByUser"
    assert failure.value.response.status_code == 403


# ---- console channel -------------------------------------------------------------------------


def _record(**fields: Any) -> ReceivedRequest:
    defaults: dict[str, Any] = dict(
        seq=1,
        received_monotonic=0.0,
        received_wall=0.0,
        method="POST",
        path="/",
        route=REPLY,
        conversation_id="a:1",
        activity_id="9",
        body=None,
        authorization=None,
        status=200,
    )
    return ReceivedRequest(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"body": message("line one\nline two")}, "[a:1] bot: line one \u23ce line two"),
        (
            {
                "body": message(
                    "Pick one",
                    attachments=[
                        {"contentType": "application/vnd.microsoft.card.adaptive"},
                        {"contentType": "image/png"},
                    ],
                    suggestedActions={"actions": [{"title": "Yes"}, {"value": "No"}]},
                )
            },
            "[a:1] bot: Pick one [2 attachments: adaptive card, image/png] [actions: Yes | No]",
        ),
        ({"body": {"type": "typing"}}, "[a:1] bot: <typing>"),
        ({"route": UPDATE, "body": message("v2")}, "[a:1] bot (edited 9): v2"),
        ({"route": DELETE, "method": "DELETE"}, "[a:1] bot deleted 9"),
        (
            {"status": 429, "error_code": "Throttled", "retry_after": 2, "body": message("x")},
            "[a:1] !! 429 Throttled for reply (Retry-After 2s)",
        ),
    ],
)
def test_console_line(fields: dict[str, Any], expected: str) -> None:
    assert console_line(_record(**fields)) == expected
