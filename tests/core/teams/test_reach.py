"""Reaching every Teams user the app can: installs, rosters, chats the bot creates, channel posts.

Real Azurite and the Connector stub (its Teams directory: devtools/connector_stub/teams.py).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import unquote

from azure.data.tables.aio import TableClient

from devtools.connector_stub import CREATE, PAGED_MEMBERS
from proactive_bot import clock
from proactive_bot.channel import activity as channel_module
from proactive_bot.notifications.contract import validate
from proactive_bot.notifications.posts import TeamsChannelPost
from proactive_bot.notifications.records import SEND_LEASE, RecipientState
from proactive_bot.teams.rows import RosterState
from proactive_bot.teams.store import TeamsStore
from proactive_bot.work import PageWork
from tests import activities
from tests.support.teams import TEAM, creates, event, installed


async def test_install_reads_a_1200_member_roster_in_three_pages_and_reaches_each_member_once(engine_factory) -> None:
    engine = await engine_factory(concurrency=64)
    roster = await installed(engine, 1200)

    team = await engine.teams.store.team(TEAM)
    assert team is not None and team.name == "Contoso Sales" and team.active
    assert (team.roster_state, team.roster_pages, team.roster_members) == (RosterState.DONE, 3, 1200)
    assert [r.route for r in engine.stub.received] == [PAGED_MEMBERS] * 3
    stored, cursor = [], None
    while True:
        page, cursor = await engine.teams.store.roster_page(TEAM, cursor, 500)
        stored += page
        if cursor is None:
            break
    assert {m.user_id for m in stored} == {m["id"] for m in roster}
    assert all(m.aad_object_id and m.tenant_id == activities.TENANT for m in stored)

    await engine.fanout.start(validate({"id": "all-hands", "to": {"teamId": TEAM}, "text": "hello team"}), "test")
    await engine.drain()

    assert creates(engine) == Counter({m["id"]: 1 for m in roster})
    texts = Counter(r.conversation_id for r in engine.stub.delivered())
    assert len(texts) == 1200 and set(texts.values()) == {1}
    status = await engine.records.status("all-hands", detail=True, limit=2000)
    assert status.counts[RecipientState.SENT] == 1200 and status.pending == 0
    assert all(row.chat_created and row.conversation_id for row in status.rows)

    # A second notification reuses every chat: no create, one message each.
    engine.stub.clear()
    await engine.fanout.start(validate({"id": "second", "to": {"teamId": TEAM}, "text": "again"}), "test")
    await engine.drain()
    assert creates(engine) == Counter()
    assert len(engine.stub.delivered()) == 1200
    status = await engine.records.status("second", detail=True, limit=2000)
    assert status.counts[RecipientState.SENT] == 1200 and not any(row.chat_created for row in status.rows)


async def test_a_redelivered_page_or_batch_creates_no_second_chat_and_sends_no_second_message(engine_factory) -> None:
    engine = await engine_factory()
    roster = await installed(engine, 120)
    # Recorded and its walk queued (start() would walk the first pages inline).
    await engine.records.create(validate({"id": "twice", "to": {"teamId": TEAM}, "text": "once"}), clock.now(), "test")
    await engine.fanout.work.put(PageWork(notification="twice"))

    [page] = [m async for m in engine.work_queue.receive_messages(max_messages=32)]
    await engine.handle(json.loads(page.content))
    await engine.handle(json.loads(page.content))  # the queue delivered the page again
    batches = [m async for m in engine.work_queue.receive_messages(max_messages=32, visibility_timeout=60)]
    assert batches and all("members" in json.loads(b.content) for b in batches)
    for batch in batches:
        await engine.handle(json.loads(batch.content))
    for batch in batches:  # and every batch again
        await engine.handle(json.loads(batch.content))

    assert creates(engine) == Counter({m["id"]: 1 for m in roster})
    assert sorted(Counter(r.conversation_id for r in engine.stub.delivered()).values()) == [1] * 120
    status = await engine.records.status("twice")
    assert status.counts[RecipientState.SENT] == 120 and status.recipients == 120


async def test_403_on_create_fails_that_member_as_not_installed_and_delivers_the_rest(engine_factory) -> None:
    engine = await engine_factory()
    roster = await installed(engine, 10)
    refused = {roster[2]["id"], roster[7]["id"]}
    engine.stub.teams.not_installed_for(*refused)

    await engine.fanout.start(validate({"id": "n403", "to": {"teamId": TEAM}, "text": "hi"}), "test")
    await engine.drain()

    status = await engine.records.status("n403", detail=True)
    assert status.counts[RecipientState.SENT] == 8 and status.counts[RecipientState.FAILED] == 2
    failed = [row for row in status.rows if row.state is RecipientState.FAILED]
    assert {row.user_id for row in failed} == refused
    assert all("not installed" in row.detail and row.status == 403 and row.attempts == 1 for row in failed)
    assert sum(creates(engine).values()) == 10  # never retried
    assert len(engine.stub.delivered()) == 8


async def test_a_member_who_chats_with_the_bot_is_one_recipient(engine_factory) -> None:
    engine = await engine_factory()
    roster = await installed(engine, 5)
    member = roster[0]
    message = activities.teams_message(
        "hi", engine.stub.url, user={"id": member["id"], "name": member["name"], "aadObjectId": member["aadObjectId"]}
    )
    await engine.references.save(channel_module.conversation_reference(channel_module.parse_activity(message)))

    await engine.fanout.start(validate({"id": "one", "to": {"all": True, "includeRoster": True}, "text": "x"}), "test")
    await engine.drain()

    assert member["id"] not in creates(engine) and sum(creates(engine).values()) == 4
    assert engine.stub.texts(message["conversation"]["id"]) == ["x"]
    status = await engine.records.status("one")
    # Everyone once: the 5 members, the General channel the install stored, nobody twice.
    assert status.counts[RecipientState.SENT] == 6 and status.pending == 0
    assert len(engine.stub.delivered()) == 6


async def test_uninstall_stops_everything_sent_through_the_team(engine_factory) -> None:
    engine = await engine_factory()
    roster = await installed(engine, 5)
    await event(engine, activities.teams_install(engine.stub.url, action="remove"))

    team = await engine.teams.store.team(TEAM)
    assert team is not None and not team.active
    await engine.fanout.start(validate({"id": "gone", "to": {"teamId": TEAM}, "text": "x"}), "test")
    ids = [m["aadObjectId"] for m in roster]
    await engine.fanout.start(validate({"id": "gone-aad", "to": {"aadObjectIds": ids}, "text": "x"}), "test")
    await engine.fanout.start(
        validate({"id": "gone-all", "to": {"all": True, "includeRoster": True}, "text": "x"}), "test"
    )
    await engine.drain()

    assert engine.stub.delivered() == [] and creates(engine) == Counter()
    status = await engine.records.status("gone")
    assert "team not installed" in status.header.note and status.recipients == 0
    status = await engine.records.status("gone-aad")
    assert status.counts[RecipientState.FAILED] == 5 and status.pending == 0


async def test_aad_object_ids_reach_roster_users_and_name_the_unknown(engine_factory) -> None:
    engine = await engine_factory()
    roster = await installed(engine, 3)
    unknown = "00000000-0000-0000-0000-00000000abcd"
    ids = [m["aadObjectId"] for m in roster] + [unknown]

    await engine.fanout.start(validate({"id": "aad", "to": {"aadObjectIds": ids}, "text": "x"}), "test")
    await engine.drain()

    status = await engine.records.status("aad", detail=True)
    assert status.counts[RecipientState.SENT] == 3 and status.counts[RecipientState.FAILED] == 1
    assert status.pending == 0 and status.header.audience == 4
    assert len(engine.stub.delivered()) == 3


async def test_members_added_and_removed_keep_the_roster_current(engine_factory) -> None:
    engine = await engine_factory()
    roster = await installed(engine, 3)
    newcomer = activities.teams_user()
    await event(engine, activities.teams_team_update(engine.stub.url, "teamMemberAdded", members_added=[newcomer]))
    await event(
        engine,
        activities.teams_team_update(engine.stub.url, "teamMemberRemoved", members_removed=[{"id": roster[0]["id"]}]),
    )
    await event(
        engine,
        activities.teams_team_update(
            engine.stub.url, "teamRenamed", team={**activities.TEAM, "name": "Contoso Global Sales"}
        ),
    )
    channel = {"id": "19:c0ffee@thread.tacv2", "name": "Launch"}
    await event(engine, activities.teams_team_update(engine.stub.url, "channelCreated", channel=channel))

    members, _ = await engine.teams.store.roster_page(TEAM, None, 500)
    assert {m.user_id for m in members} == {roster[1]["id"], roster[2]["id"], newcomer["id"]}
    assert (await engine.teams.store.reachable_user(roster[0]["id"])) is None
    assert (await engine.teams.store.team(TEAM)).name == "Contoso Global Sales"
    assert (await engine.teams.store.channel(TEAM, channel["id"]))["name"] == "Launch"


async def test_channel_post_starts_a_thread_and_replyto_answers_in_it(engine_factory) -> None:
    engine = await engine_factory()
    await installed(engine, 1)
    engine.stub.clear()
    channel = "19:c0ffee@thread.tacv2"

    await engine.fanout.start(
        validate({"id": "post", "to": {"teamChannel": {"teamId": TEAM, "channelId": channel}}, "text": "launch today"}),
        "test",
    )
    await engine.fanout.start(
        validate(
            {
                "id": "post-2",
                "to": {"teamChannel": {"teamId": TEAM, "channelId": channel, "replyTo": "post"}},
                "text": "it is live",
            }
        ),
        "test",
    )
    await engine.fanout.start(
        validate({"id": "post", "to": {"teamChannel": {"teamId": TEAM, "channelId": channel}}, "text": "launch today"}),
        "test",
    )  # redelivered: no second thread

    [create] = [r for r in engine.stub.received if r.route == CREATE]
    thread = create.conversation_id
    assert thread.startswith(channel + ";messageid=")
    assert engine.stub.texts(thread) == ["launch today", "it is live"]
    status = await engine.records.status("post", detail=True)
    assert status.counts[RecipientState.SENT] == 1 and status.rows[0].conversation_id == thread


async def test_replyto_a_notification_that_started_no_thread_fails_and_posts_nothing(engine_factory) -> None:
    engine = await engine_factory()
    await installed(engine, 1)
    await engine.fanout.start(validate({"id": "to-team", "to": {"teamId": TEAM}, "text": "hello"}), "test")
    await engine.drain()
    assert engine.stub.texts() == ["hello"]  # in the member's 1:1 chat, which the bot created
    channel = "19:c0ffee@thread.tacv2"

    for reply_to in ("to-team", "never-sent"):
        await engine.fanout.start(
            validate(
                {
                    "id": f"reply-{reply_to}",
                    "to": {"teamChannel": {"teamId": TEAM, "channelId": channel, "replyTo": reply_to}},
                    "text": "a reply",
                }
            ),
            "test",
        )

        status = await engine.records.status(f"reply-{reply_to}", detail=True)
        assert status.counts[RecipientState.FAILED] == 1 and status.pending == 0
        assert status.rows[0].detail == f"no thread started by {reply_to!r}"
    assert engine.stub.texts() == ["hello"]


async def test_a_channel_post_raced_by_an_edit_completes_and_by_a_delete_is_never_posted(engine_factory, monkeypatch):
    engine = await engine_factory()
    await installed(engine, 1)
    engine.stub.clear()
    channel = "19:c0ffee@thread.tacv2"
    real_team = engine.teams.store.team
    racing: list[Callable[[], Awaitable[object]]] = []

    async def team_then(team_id):
        found = await real_team(team_id)
        await racing.pop()()  # the record changes between the post's read of it and its claim
        return found

    monkeypatch.setattr(engine.teams.store, "team", team_then)
    racing.append(lambda: engine.lifecycle.edit("edited-post", "v1", None))
    await engine.fanout.start(
        validate({"id": "edited-post", "to": {"teamChannel": {"teamId": TEAM, "channelId": channel}}, "text": "v0"}),
        "test",
    )
    racing.append(lambda: engine.lifecycle.cancel("deleted-post"))
    await engine.fanout.start(
        validate(
            {"id": "deleted-post", "to": {"teamChannel": {"teamId": TEAM, "channelId": channel}}, "text": "never"}
        ),
        "test",
    )
    await engine.drain()

    assert [r.body["activity"]["text"] for r in engine.stub.received if r.route == CREATE] == ["v1"]
    edited = await engine.records.status("edited-post")
    assert edited.state.value == "done" and edited.counts[RecipientState.SENT] == 1
    deleted = await engine.records.status("deleted-post")
    assert deleted.state.value == "cancelled" and deleted.counts[RecipientState.SENT] == 0


async def test_a_throttled_reply_comes_back_through_the_work_queue(engine_factory) -> None:
    engine = await engine_factory(retry_budget=0.5)
    await installed(engine, 1)
    channel = "19:c0ffee@thread.tacv2"
    await engine.fanout.start(
        validate(
            {"id": "thread", "to": {"teamChannel": {"teamId": TEAM, "channelId": channel}}, "text": "launch today"}
        ),
        "test",
    )
    [create] = [r for r in engine.stub.received if r.route == CREATE and r.body.get("isGroup")]
    engine.stub.fail(create.conversation_id, [429], retry_after=1)  # longer than this invocation's budget

    await engine.fanout.start(
        validate(
            {
                "id": "reply",
                "to": {"teamChannel": {"teamId": TEAM, "channelId": channel, "replyTo": "thread"}},
                "text": "it is live",
            }
        ),
        "test",
    )
    assert (await engine.records.status("reply")).counts[RecipientState.RETRY] == 1
    await engine.drain(wait_for_delayed=2.5)

    assert engine.stub.texts(create.conversation_id) == ["launch today", "it is live"]
    status = await engine.records.status("reply")
    assert status.counts[RecipientState.SENT] == 1 and status.state.value == "done" and status.throttled == 1


async def test_a_resend_reaches_a_roster_member_whose_chat_create_was_cut_short(engine_factory) -> None:
    engine = await engine_factory()
    await installed(engine, 1)
    [member], _ = await engine.teams.store.roster_page(TEAM, None, 500)
    # A sender claimed the member, then died creating their chat: the row has no conversation.
    header = await engine.records.create(
        validate({"id": "cut", "to": {"teamId": TEAM}, "text": "x"}), clock.now(), "test"
    )
    await engine.records.advance(header, found=1, cursor=None, planned=True)
    await engine.records.claim("cut", member, clock.now() - SEND_LEASE - timedelta(seconds=1))
    assert (await engine.records.status("cut")).counts[RecipientState.UNCONFIRMED] == 1

    assert await engine.fanout.resend("cut", RecipientState.UNCONFIRMED) == 1
    await engine.drain()

    assert creates(engine) == {member.user_id: 1} and engine.stub.texts() == ["x"]
    status = await engine.records.status("cut")
    assert status.counts[RecipientState.SENT] == 1 and status.state.value == "done" and status.resent == 1


async def test_a_resend_of_a_channel_post_cut_short_posts_it_again(engine_factory) -> None:
    engine = await engine_factory()
    await installed(engine, 1)
    engine.stub.clear()
    channel = "19:c0ffee@thread.tacv2"
    document = {"id": "cut-post", "to": {"teamChannel": {"teamId": TEAM, "channelId": channel}}, "text": "launch"}
    header = await engine.records.create(validate(document), clock.now(), "test")
    await engine.records.advance(header, found=1, cursor=None, planned=True)
    # Its sender died posting: the row, keyed by the channel, is left `sending`.
    await engine.records.claim("cut-post", TeamsChannelPost(channel), clock.now() - SEND_LEASE - timedelta(seconds=1))

    assert await engine.fanout.resend("cut-post", RecipientState.UNCONFIRMED) == 1
    await engine.drain()

    [create] = [r for r in engine.stub.received if r.route == CREATE]
    assert create.conversation_id.startswith(channel + ";messageid=") and engine.stub.texts() == ["launch"]
    status = await engine.records.status("cut-post")
    assert status.counts[RecipientState.SENT] == 1 and status.state.value == "done"


async def test_a_roster_member_claimed_as_a_delete_lands_is_cancelled_and_no_chat_is_created(
    engine_factory, monkeypatch
):
    engine = await engine_factory()
    await installed(engine, 1)
    engine.stub.clear()
    real_cancelled = engine.records.stopped

    async def cancelled_just_before(notification_id):
        # The DELETE's mark is written after the member's claim, before its cancel check reads.
        await engine.records.cancel(await engine.records.header(notification_id), clock.now())
        return await real_cancelled(notification_id)

    monkeypatch.setattr(engine.records, "stopped", cancelled_just_before)
    await engine.fanout.start(validate({"id": "late-delete", "to": {"teamId": TEAM}, "text": "x"}), "test")
    await engine.drain()

    assert engine.stub.received == []  # no chat created, nothing sent
    [row] = (await engine.records.status("late-delete", detail=True)).rows
    assert row.state is RecipientState.CANCELLED and row.attempts == 0


async def test_the_roster_walk_resumes_and_a_redelivered_roster_message_does_not_fork_it(engine_factory, monkeypatch):
    from proactive_bot.teams import roster as roster_module

    monkeypatch.setattr(roster_module, "WALK_BUDGET", 0.0)  # one page per work message
    engine = await engine_factory()
    roster = engine.stub.teams.add_team(TEAM, 1200)
    await event(engine, activities.teams_install(engine.stub.url))

    [first] = [m async for m in engine.work_queue.receive_messages(max_messages=32)]
    await engine.handle(json.loads(first.content))  # page 1, then the cursor is handed on
    await engine.handle(json.loads(first.content))  # the same message again: page 2 from the stored cursor
    await engine.drain()

    team = await engine.teams.store.team(TEAM)
    assert (team.roster_state, team.roster_members) == (RosterState.DONE, 1200)
    assert [r.route for r in engine.stub.received].count(PAGED_MEMBERS) == 3
    members, cursor = await engine.teams.store.roster_page(TEAM, None, 1000)
    more, _ = await engine.teams.store.roster_page(TEAM, cursor, 1000)
    assert len({m.user_id for m in members + more}) == len(roster)


async def test_group_chat_installs_are_recorded_and_removed(engine_factory) -> None:
    engine = await engine_factory()
    install = activities.teams_install(engine.stub.url)
    chat_id = "19:meeting_abc@thread.v2"
    install["conversation"] = {
        "isGroup": True,
        "conversationType": "groupChat",
        "tenantId": activities.TENANT,
        "id": chat_id,
    }
    del install["channelData"]["team"]
    await event(engine, install)
    assert await engine.teams.store.chat_active(chat_id)

    await event(engine, {**install, "action": "remove"})
    assert not await engine.teams.store.chat_active(chat_id)
    assert not (await engine.references.get("msteams", chat_id)).active


async def test_an_aad_object_id_with_its_tenant_reaches_a_user_no_roster_lists(engine_factory) -> None:
    engine = await engine_factory()
    await installed(engine, 1)  # an install in the tenant: its serviceUrl is known
    [stranger] = engine.stub.teams.add_team("19:other@thread.tacv2", 1)  # Teams knows them; the bot does not

    document = {
        "id": "by-oid",
        "to": {"aadObjectIds": [stranger["aadObjectId"]], "tenantId": activities.TENANT},
        "text": "x",
    }
    await engine.fanout.start(validate(document), "test")
    await engine.drain()

    [create] = [r for r in engine.stub.received if r.route == CREATE]
    assert create.body["members"] == [{"id": "8:orgid:" + stranger["aadObjectId"]}]
    status = await engine.records.status("by-oid", detail=True)
    assert status.counts[RecipientState.SENT] == 1 and status.rows[0].chat_created
    assert engine.stub.texts(create.conversation_id) == ["x"]


async def test_a_roster_the_channel_refuses_is_not_retried_and_the_team_is_reached_as_read(engine_factory) -> None:
    engine = await engine_factory()
    engine.stub.teams.add_team(TEAM, 3)
    engine.stub.block(TEAM, 403, "BotNotInConversationRoster")
    await event(engine, activities.teams_install(engine.stub.url))
    await engine.drain()

    team = await engine.teams.store.team(TEAM)
    assert team.roster_state is RosterState.FAILED and team.active
    await engine.fanout.start(validate({"id": "partial", "to": {"teamId": TEAM}, "text": "x"}), "test")
    await engine.drain()
    status = await engine.records.status("partial")
    assert status.state.value == "done" and "only part of the roster" in status.header.note


async def test_aad_object_ids_of_one_tenant_read_its_service_url_once(engine_factory, new_table, storage_connection):
    engine = await engine_factory()
    table = await new_table()
    await TeamsStore(table).install_team("19:t@thread.tacv2", "T", activities.TENANT, engine.stub.url, "", clock.now())
    tenant_reads: list[str] = []

    def count(request) -> None:
        if "PartitionKey='tenant'" in unquote(request.http_request.url):
            tenant_reads.append(request.http_request.url)

    async with TableClient.from_connection_string(
        storage_connection, table.table_name, raw_request_hook=count
    ) as counted:
        reach = dataclasses.replace(engine.teams, store=TeamsStore(counted))
        known, unknown = await reach.resolve_aad([str(uuid.uuid4()) for _ in range(20)], activities.TENANT)

    assert unknown == [] and len(known) == 20
    assert all(m.user_id.startswith("8:orgid:") and m.service_url == engine.stub.url for m in known)
    assert len(tenant_reads) == 1


async def test_one_user_by_entra_id_known_only_from_a_roster_gets_a_chat_created(engine_factory) -> None:
    engine = await engine_factory()
    stranger, _ = await installed(engine, 2)  # never wrote to the bot
    unknown = "00000000-0000-0000-0000-00000000abcd"

    await engine.fanout.start(validate({"id": "one", "to": {"aadObjectId": stranger["aadObjectId"]}, "text": "x"}), "t")
    await engine.fanout.start(validate({"id": "nobody", "to": {"aadObjectId": unknown}, "text": "x"}), "t")
    await engine.drain()

    status = await engine.records.status("one", detail=True)
    assert status.counts[RecipientState.SENT] == 1 and status.rows[0].chat_created
    assert creates(engine) == {stranger["id"]: 1}
    assert engine.stub.texts(status.rows[0].conversation_id) == ["x"]
    nobody = await engine.records.status("nobody")
    assert (nobody.recipients, nobody.header.note) == (0, "recipient not known")
