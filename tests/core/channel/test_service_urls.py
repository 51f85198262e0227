"""Which serviceUrls the bot sends to: Bot Framework channel hosts; loopback only in local mode;
nothing that reads as one host and connects to another."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from devtools.connector_stub import ConnectorStub
from proactive_bot import app as app_module
from proactive_bot.activities import message
from proactive_bot.channel.service_urls import DEFAULT_HOSTS, ServiceUrlNotAllowed, ServiceUrlPolicy
from proactive_bot.delivery import Outcome
from tests import activities

DEFAULTS = ServiceUrlPolicy.from_settings((), local_mode=False)
LOCAL = ServiceUrlPolicy.from_settings((), local_mode=True)

CHANNEL_URLS = [
    "https://smba.trafficmanager.net/amer/",
    "https://smba.trafficmanager.net/teams/",
    "https://smba.trafficmanager.net/emea/72f988bf-86f1-41af-91ab-2d7cd011db47/",
    "https://SMBA.TrafficManager.net./apac/",
    "https://smba.infra.gcc.teams.microsoft.com/teams",
    "https://smba.infra.gov.teams.microsoft.us/teams",
    "https://webchat.botframework.com/",
    "https://directline.botframework.com/",
    "https://europe.directline.botframework.com/",
    "https://slack.botframework.com",
    "https://facebook.botframework.azure.us/",
]
STRANGERS = [
    "https://evil.example/",
    "https://attacker.trafficmanager.net/",  # anyone can make a Traffic Manager profile
    "https://botframework.com.evil.example/",
    "https://evilbotframework.com/",
    "https://smba.trafficmanager.net.evil.example/",
    "https://smba.trafficmanager.net@evil.example/",  # user info: connects to evil.example
    "https://user:pass@webchat.botframework.com/",
    "https://evil.example#@smba.trafficmanager.net/",
    "https://evil.example?.botframework.com/",
    "https://evil.example\\@smba.trafficmanager.net/",
    "https://evil.example\\.botframework.com/",
    "https://webchat.botframework.com\n.evil.example/",
    "https://evil.example\t.botframework.com/",
    " https://webchat.botframework.com/",
    "http://smba.trafficmanager.net/amer/",  # a token over plain http
    "ftp://smba.trafficmanager.net/",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "smba.trafficmanager.net/amer/",
    "//smba.trafficmanager.net/amer/",
    "",
    "http://127.0.0.1:3978/",
    "http://localhost:3978/",
    "http://[::1]:3978/",
    "http://169.254.169.254/metadata/",
]


@pytest.mark.parametrize("url", CHANNEL_URLS)
def test_bot_framework_channel_hosts_are_allowed_by_default(url):
    DEFAULTS.check(url)


@pytest.mark.parametrize("url", STRANGERS)
def test_anything_else_is_refused_with_a_reason(url):
    with pytest.raises(ServiceUrlNotAllowed) as refused:
        DEFAULTS.check(url)
    assert str(refused.value)


def test_local_mode_adds_loopback_and_nothing_else():
    for url in ("http://127.0.0.1:3978/", "http://localhost:3978/", "http://[::1]:3978/", "https://localhost/"):
        LOCAL.check(url)
    for url in (
        "https://evil.example/",
        "http://10.0.0.1/",
        "http://169.254.169.254/",
        "http://127.0.0.1@evil.example/",
    ):
        assert not LOCAL.allows(url)


def test_the_allowlist_can_extend_or_replace_the_defaults():
    extended = ServiceUrlPolicy.from_settings(("default", "*.contoso.com", "bots.fabrikam.net."), local_mode=False)
    replaced = ServiceUrlPolicy.from_settings(("bots.fabrikam.net",), local_mode=False)

    assert extended.hosts[: len(DEFAULT_HOSTS)] == DEFAULT_HOSTS
    assert extended.allows("https://eu.contoso.com/bot/") and extended.allows("https://bots.fabrikam.net/")
    assert not extended.allows("https://contoso.com.evil.example/")
    assert replaced.allows("https://bots.fabrikam.net/") and not replaced.allows("https://webchat.botframework.com/")


def test_an_allowlist_entry_must_be_a_host():
    with pytest.raises(ValueError, match="host names, not URLs"):
        ServiceUrlPolicy.from_settings(("https://smba.trafficmanager.net/amer/",), local_mode=False)


@given(
    st.one_of(
        st.text(),
        st.builds(lambda a, b: a + b, st.sampled_from(CHANNEL_URLS + STRANGERS), st.text()),
        st.builds(
            lambda a, b: "https://" + a + b,
            st.text(),
            st.sampled_from([".botframework.com/", "@smba.trafficmanager.net/"]),
        ),
    )
)
def test_the_host_checked_is_the_host_a_send_connects_to(url):
    """Whatever the string, if it passes, every URL the connector builds on it dials an allowed host."""
    if DEFAULTS.allows(url):
        sent_to = URL(url.rstrip("/") + "/v3/conversations/a%3A1/activities/1")
        assert sent_to.scheme == "https"
        assert DEFAULTS.allows(f"https://{sent_to.host}/")


async def test_a_tampered_address_gets_no_token_and_no_request(authenticated_app, token_server, caplog):
    """A row edited in storage to point elsewhere: refused before a token is even fetched."""
    caplog.set_level(logging.WARNING)
    _, token_requests = token_server
    async with ConnectorStub() as stranger:
        # Reachable, but named as "localhost", which the allowlist (default + 127.0.0.1) lacks.
        url = stranger.url.replace("127.0.0.1", "localhost")
        reference = activities.reference(activities.teams_message("hi", url))

        result = await authenticated_app.delivery.send(activities.stored(reference), [message("hi")])

        assert stranger.received == []
    assert result.outcome is Outcome.FAILED and "serviceUrl not allowed" in result.detail
    assert token_requests == []
    assert "refused to send to serviceUrl" in caplog.text and "localhost" in caplog.text


async def test_a_spoofed_activity_in_local_mode_is_refused_and_not_stored(local_app, caplog):
    caplog.set_level(logging.WARNING)
    conversation_id = f"spoofed-{uuid.uuid4().hex}"
    spoofed = activities.webchat_message("hi", "https://evil.example/", conversation_id=conversation_id)

    result = await app_module.receive_activity(json.dumps(spoofed).encode(), None)

    assert result.status == 400 and "serviceUrl not allowed" in result.body["error"]["message"]
    assert await local_app.references.get("webchat", conversation_id) is None
    assert "evil.example" in caplog.text
