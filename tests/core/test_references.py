"""Stored conversation references: kept whole, refreshed only on change, found by user keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from proactive_bot.channel import conversation_reference, parse_activity
from proactive_bot.references import LAST_SEEN_RESOLUTION, ReferenceStore
from tests import activities
from tests.storage import counting_table
from tests.support.present import present

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SERVICE_URL = "https://smba.trafficmanager.net/emea/"


def reference_of(activity: dict) -> dict:
    return conversation_reference(parse_activity(activity))


async def test_reference_is_stored_whole_and_found_by_every_key(new_table):
    store = ReferenceStore(await new_table())
    user = activities.teams_user()
    reference = reference_of(activities.teams_message("hi", SERVICE_URL, user=user))

    assert await store.save(reference, NOW) is True

    conversation_id = reference["conversation"]["id"]
    by_conversation = present(await store.get("msteams", conversation_id))
    assert by_conversation.reference == reference  # untouched, byte for byte after JSON
    assert by_conversation.tenant_id == activities.TENANT
    assert by_conversation.aad_object_id == user["aadObjectId"]
    assert present(await store.find_user("msteams", user["id"])).reference == reference
    assert present(await store.find_aad_user(user["aadObjectId"])).reference == reference
    assert await store.find_user("webchat", user["id"]) is None


async def test_repeat_message_costs_no_table_write(new_table, storage_connection):
    name = (await new_table()).table_name
    table, requests = counting_table(storage_connection, name)
    store = ReferenceStore(table)
    user, conversation = activities.teams_user(), activities.teams_personal_conversation()
    first = activities.teams_message("hi", SERVICE_URL, user=user, conversation=conversation)
    await store.save(reference_of(first), NOW)
    requests.reset()

    # A second message has a new activity id but the same address.
    again = activities.teams_message("help", SERVICE_URL, user=user, conversation=conversation)
    assert await store.save(reference_of(again), NOW + timedelta(minutes=5)) is False

    assert requests.writes == 0
    assert requests.reads == 1
    await table.close()


async def test_changed_address_or_stale_last_seen_is_rewritten(new_table):
    store = ReferenceStore(await new_table())
    user, conversation = activities.teams_user(), activities.teams_personal_conversation()
    await store.save(
        reference_of(activities.teams_message("a", SERVICE_URL, user=user, conversation=conversation)), NOW
    )

    moved = activities.teams_message("b", "https://smba.trafficmanager.net/amer/", user=user, conversation=conversation)
    assert await store.save(reference_of(moved), NOW) is True
    assert present(await store.get("msteams", conversation["id"])).reference["serviceUrl"].endswith("/amer/")

    later = NOW + LAST_SEEN_RESOLUTION
    assert await store.save(reference_of(moved), later) is True
    assert present(await store.get("msteams", conversation["id"])).last_seen == later


async def test_personal_conversation_wins_the_user_pointer(new_table):
    store = ReferenceStore(await new_table())
    user = activities.teams_user()
    group = reference_of(
        activities.teams_message("hi", SERVICE_URL, user=user, conversation=activities.teams_channel_conversation())
    )
    personal = reference_of(activities.teams_message("hi", SERVICE_URL, user=user))
    other_group = reference_of(
        activities.teams_message("hi", SERVICE_URL, user=user, conversation=activities.teams_channel_conversation())
    )

    await store.save(group, NOW)
    assert present(await store.find_user("msteams", user["id"])).is_group  # better than nothing
    await store.save(personal, NOW)
    await store.save(other_group, NOW)
    assert present(await store.find_user("msteams", user["id"])).reference == personal


async def test_inactive_reference_is_skipped_and_revived_by_a_new_activity(new_table):
    store = ReferenceStore(await new_table())
    user, conversation = activities.teams_user(), activities.teams_personal_conversation()
    reference = reference_of(activities.teams_message("hi", SERVICE_URL, user=user, conversation=conversation))
    await store.save(reference, NOW)
    stored = present(await store.get("msteams", conversation["id"]))

    await store.mark_inactive(stored, "403 Forbidden")
    assert [r async for r in store.all_active()] == []
    assert present(await store.get("msteams", conversation["id"])).inactive_reason == "403 Forbidden"

    assert await store.save(reference, NOW) is True
    assert [r.conversation_id async for r in store.all_active()] == [conversation["id"]]


async def test_all_active_filters_by_channel_and_tenant(new_table):
    store = ReferenceStore(await new_table())
    teams = reference_of(activities.teams_message("hi", SERVICE_URL))
    webchat = reference_of(activities.webchat_message("hi", "https://webchat.botframework.com/"))
    await store.save(teams, NOW)
    await store.save(webchat, NOW)

    assert len([r async for r in store.all_active()]) == 2
    assert [r.channel_id async for r in store.all_active(channel_id="webchat")] == ["webchat"]
    assert [r.channel_id async for r in store.all_active(tenant_id=activities.TENANT)] == ["msteams"]


async def test_the_language_is_the_chosen_one_else_the_references_locale(new_table):
    store = ReferenceStore(await new_table())
    message = activities.teams_message("hi", SERVICE_URL)
    message["locale"] = "de-de"
    reference = reference_of(message)
    conversation_id = reference["conversation"]["id"]
    await store.save(reference, NOW)
    assert present(await store.get("msteams", conversation_id)).language == "de"

    assert await store.set_language("msteams", conversation_id, "zh-Hans")
    message["locale"] = "en-US"  # the client's locale changes: the address is rewritten, the choice kept
    assert await store.save(reference_of(message), NOW) is True
    stored = present(await store.get("msteams", conversation_id))
    assert (stored.chosen_language, stored.language) == ("zh-Hans", "zh-Hans")
    assert not await store.set_language("msteams", "a:unknown", "de")
