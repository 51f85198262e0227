"""Table keys: any channel id becomes a legal key, two ids never share one, and every id is
stored and found again exactly (property tests, against Azurite)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proactive_bot.references import ReferenceStore
from proactive_bot.storage.keys import table_key
from tests.support.present import present

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
FORBIDDEN_IN_KEYS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")

# Ids as channels could send them: anything that is Unicode text, with the troublesome
# characters made likely, and long enough to cross the hashing threshold.
TRICKY = "/\\#?%'\x00\x1f\x7f\x9f\u00e9\u4e2d\U0001f600 :;@|"
unicode_ids = st.text(
    alphabet=st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8")), min_size=1, max_size=700
)
# JSON can hold lone surrogates, so an id can too, before the edges refuse it.
any_ids = st.text(alphabet=st.one_of(st.sampled_from(TRICKY + "\ud800\udfff"), st.characters()), max_size=700)


def decode(key: str) -> str:
    """The inverse of table_key for keys that were not hashed: proof that no two ids collide."""
    return re.sub(
        r"%u([0-9A-F]{4})|%([0-9A-F]{2})",
        lambda m: chr(int(m.group(1) or m.group(2), 16)),
        key,
    )


@given(any_ids)
def test_every_id_becomes_a_legal_key_that_only_it_maps_to(value):
    key = table_key(value)

    assert not FORBIDDEN_IN_KEYS.search(key)
    assert len(key.encode("utf-8")) <= 512  # UTF-8 encodable, so no lone surrogate survives
    if key.startswith("%H"):
        assert re.fullmatch(r"%H[0-9a-f]{64}", key)  # sha-256 of the id
    else:
        assert decode(key) == value


def test_examples_of_channel_ids():
    assert table_key("a:1Xyz-Abc_Def") == "a:1Xyz-Abc_Def"
    assert table_key("19:abc@thread.tacv2;messageid=1") == "19:abc@thread.tacv2;messageid=1"
    assert table_key("dl_1/2#3?4\\5%6'7") == "dl_1%2F2%233%3F4%5C5%256%277"
    assert table_key("\ud800x") == "%uD800x"
    assert table_key("x" * 600).startswith("%H")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    conversation_id=unicode_ids, user_id=unicode_ids, aad_id=unicode_ids, channel_id=unicode_ids.map(lambda s: s[:64])
)
async def test_any_ids_are_stored_and_found_again_exactly(new_table, channel_id, conversation_id, user_id, aad_id):
    store = ReferenceStore(await new_table())  # a table per example: replayed examples start clean
    reference = {
        "user": {"id": user_id, "name": "U", "aadObjectId": aad_id},
        "bot": {"id": "28:bot", "name": "Bot"},
        "conversation": {"id": conversation_id, "conversationType": "personal"},
        "channelId": channel_id,
        "serviceUrl": "https://smba.trafficmanager.net/emea/",
    }

    await store.save(reference, NOW)

    by_conversation = present(await store.get(channel_id, conversation_id))
    assert by_conversation.reference == reference
    assert (by_conversation.channel_id, by_conversation.conversation_id) == (channel_id, conversation_id)
    assert present(await store.find_user(channel_id, user_id)).reference == reference
    assert present(await store.find_aad_user(aad_id)).reference == reference


async def test_a_lone_surrogate_id_is_a_plain_miss(new_table):
    store = ReferenceStore(await new_table())

    assert await store.get("msteams", "a:\ud800") is None
    assert await store.find_user("msteams", "\udfff") is None
