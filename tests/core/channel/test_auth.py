"""Inbound auth with credentials set: real Bot Framework tokens, checked offline against a local
OpenID metadata + JWKS server (devtools/openid_stub.py) signing with a test RSA key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization

from devtools.connector_stub import ConnectorStub
from devtools.openid_stub import OpenIdStub, new_key
from proactive_bot import app as app_module
from proactive_bot.channel import auth
from proactive_bot.settings import Settings, SettingsError
from tests import activities
from tests.conftest import ACCESS_TOKEN, APP_ID, APP_PASSWORD, authenticated_settings
from tests.net import run_while_counting_ticks, silent_server

MINUTE = 60


@pytest.fixture
async def channel() -> AsyncIterator[ConnectorStub]:
    async with ConnectorStub() as stub:
        stub.expect_bearer(ACCESS_TOKEN)
        yield stub


async def post(activity: dict, header: str | None) -> app_module.HttpResult:
    return await app_module.receive_activity(json.dumps(activity).encode(), header)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, claims: dict, signature: bytes = b"") -> str:
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()), b64url(signature)])


async def test_a_channel_token_runs_the_turn_and_the_reply_carries_the_bots_token(authenticated_app, openid, channel):
    message = activities.teams_message("help", channel.url)

    result = await post(message, "Bearer " + openid.channel_token(APP_ID, channel.url))

    assert result.status == 200
    [reply] = channel.activities(message["conversation"]["id"])  # expect_bearer(ACCESS_TOKEN) held
    assert reply["replyToId"] == message["id"]
    assert await authenticated_app.references.get("msteams", message["conversation"]["id"]) is not None


def forged_tokens(openid: OpenIdStub, service_url: str) -> dict[str, str]:
    """Every way a token can be wrong, each otherwise a perfect channel token."""
    now = int(time.time())
    good = openid.channel_claims(APP_ID, service_url)
    public_pem = openid.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = {"alg": "HS256", "kid": openid.kid, "typ": "JWT"}
    hs_input = unsigned(hs_header, good).rsplit(".", 1)[0].encode()
    valid = openid.channel_token(APP_ID, service_url)
    head, _, signature = valid.split(".")
    return {
        "expired": openid.channel_token(APP_ID, service_url, exp=now - 6 * MINUTE, nbf=now - 3600),
        "not yet valid": openid.channel_token(APP_ID, service_url, nbf=now + 6 * MINUTE),
        "no expiry": openid.channel_token(APP_ID, service_url, exp=None),
        "wrong audience": openid.channel_token("another-bot", service_url),
        "audience as a list": openid.channel_token(APP_ID, service_url, aud=[APP_ID]),
        "no audience": openid.channel_token(APP_ID, service_url, aud=None),
        "wrong issuer": openid.channel_token(APP_ID, service_url, iss="https://api.botframework.example"),
        # What the Emulator and skills send: an Entra ID token for our app, without serviceurl.
        "emulator issuer": openid.channel_token(
            APP_ID,
            service_url,
            iss="https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/",
            serviceurl=None,
            appid=APP_ID,
            ver="1.0",
        ),
        "serviceurl of another host": openid.channel_token(APP_ID, "https://smba.trafficmanager.net/emea/"),
        "no serviceurl": openid.channel_token(APP_ID, service_url, serviceurl=None),
        "signed by another key": openid.sign(good, key=new_key()),
        "unknown key id": openid.sign(good, kid="not-published"),
        "alg none": unsigned({"alg": "none", "kid": openid.kid, "typ": "JWT"}, good),
        "alg none, no kid": unsigned({"alg": "none", "typ": "JWT"}, good),
        "HS256 keyed with the public key": unsigned(
            hs_header, good, hmac.new(public_pem, hs_input, hashlib.sha256).digest()
        ),
        "RS384 header on an RS256 signature": head.replace(
            head, b64url(json.dumps({"alg": "RS384", "kid": openid.kid}).encode())
        )
        + "."
        + valid.split(".")[1]
        + "."
        + signature,
        "payload edited after signing": ".".join(
            [head, b64url(json.dumps({**good, "aud": APP_ID, "x": 1}).encode()), signature]
        ),
        "no signature": ".".join([head, valid.split(".")[1], ""]),
        "garbage": "garbage",
        "three dots": "a.b.c",
    }


FORGED = [
    "expired",
    "not yet valid",
    "no expiry",
    "wrong audience",
    "audience as a list",
    "no audience",
    "wrong issuer",
    "emulator issuer",
    "serviceurl of another host",
    "no serviceurl",
    "signed by another key",
    "unknown key id",
    "alg none",
    "alg none, no kid",
    "HS256 keyed with the public key",
    "RS384 header on an RS256 signature",
    "payload edited after signing",
    "no signature",
    "garbage",
    "three dots",
]


@pytest.mark.parametrize("forgery", FORGED)
async def test_a_forged_token_is_401_and_runs_no_turn(authenticated_app, openid, channel, forgery, caplog):
    caplog.set_level(logging.WARNING)
    message = activities.teams_message("hi", channel.url)

    result = await post(message, "Bearer " + forged_tokens(openid, channel.url)[forgery])

    assert (result.status, result.body) == (401, {"error": {"message": "unauthorized"}})
    assert channel.received == []
    assert await authenticated_app.references.get("msteams", message["conversation"]["id"]) is None
    assert "rejected an unauthenticated request" in caplog.text  # with the reason, for operators
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "bearer x.y.z", "Basic dXNlcjpwYXNz", "Bearer  a.b.c"]
)
async def test_a_missing_or_malformed_header_is_401(authenticated_app, channel, header):
    result = await post(activities.teams_message("hi", channel.url), header)

    assert result.status == 401
    assert channel.received == []


async def test_a_token_for_one_channel_cannot_be_used_for_a_channel_its_key_does_not_endorse(
    authenticated_app, openid, channel
):
    message = activities.webchat_message("hi", channel.url)
    message["channelId"] = "not-endorsed"

    result = await post(message, "Bearer " + openid.channel_token(APP_ID, channel.url))

    assert result.status == 401


async def test_five_minutes_of_clock_skew_are_tolerated(authenticated_app, openid, channel):
    now = int(time.time())
    just_expired = openid.channel_token(APP_ID, channel.url, exp=now - 4 * MINUTE, nbf=now - 3600)
    early = openid.channel_token(APP_ID, channel.url, nbf=now + 4 * MINUTE)

    for token in (just_expired, early):
        assert (await post(activities.webchat_message("hi", channel.url), "Bearer " + token)).status == 200
    assert len(channel.delivered()) == 2


async def test_keys_are_fetched_once_and_shared_by_concurrent_requests(
    storage_connection, token_server, channel, serve_app
):
    async with OpenIdStub() as fresh:
        await serve_app(authenticated_settings(storage_connection, token_server[0], fresh.metadata_url))
        results = await asyncio.gather(
            *[
                post(
                    activities.webchat_message("hi", channel.url), "Bearer " + fresh.channel_token(APP_ID, channel.url)
                )
                for _ in range(10)
            ]
        )
        # Made-up key ids do not make each request a fetch either.
        for n in range(5):
            made_up = fresh.sign(fresh.channel_claims(APP_ID, channel.url), kid=f"made-up-{n}")
            await post(activities.webchat_message("hi", channel.url), "Bearer " + made_up)

    assert [r.status for r in results] == [200] * 10 and len(channel.delivered()) == 10
    assert (fresh.metadata_requests, fresh.keys_requests) == (1, 1)


async def test_a_rotated_key_is_picked_up(storage_connection, token_server, channel, serve_app, monkeypatch):
    monkeypatch.setattr(auth, "UNKNOWN_KEY_REFETCH", 0.0)
    async with OpenIdStub() as rotating:
        await serve_app(authenticated_settings(storage_connection, token_server[0], rotating.metadata_url))
        before = await post(
            activities.webchat_message("hi", channel.url), "Bearer " + rotating.channel_token(APP_ID, channel.url)
        )
        rotating.rotate()
        after = await post(
            activities.webchat_message("hi", channel.url), "Bearer " + rotating.channel_token(APP_ID, channel.url)
        )

    assert (before.status, after.status) == (200, 200) and len(channel.delivered()) == 2
    assert rotating.keys_requests == 2


async def test_a_key_server_that_never_answers_does_not_freeze_the_app(
    storage_connection, token_server, channel, serve_app, monkeypatch
):
    monkeypatch.setattr(auth, "FETCH_TIMEOUT", aiohttp.ClientTimeout(total=0.3))
    async with silent_server() as silent, OpenIdStub() as signer:
        await serve_app(
            authenticated_settings(
                storage_connection, token_server[0], silent.url + "/v1/.well-known/openidconfiguration"
            )
        )
        token = "Bearer " + signer.channel_token(APP_ID, channel.url)
        result, ticks = await run_while_counting_ticks(post(activities.webchat_message("hi", channel.url), token))
        again = await post(activities.webchat_message("hi", channel.url), token)

    assert ticks >= 5  # the loop kept serving other work while the fetch waited
    assert not isinstance(result, BaseException)
    assert result.status == 503 and "try again" in result.body["error"]["message"]
    assert again.status == 503
    assert silent.connections == 1  # the second request failed fast instead of waiting again
    assert channel.received == []


@pytest.mark.parametrize(
    "forgery", ["alg none", "alg none, no kid", "HS256 keyed with the public key", "RS384 header on an RS256 signature"]
)
async def test_a_token_that_is_not_rs256_with_a_kid_is_401_before_any_key_fetch(
    storage_connection, token_server, openid, channel, serve_app, monkeypatch, forgery
):
    # Even while the signing keys cannot be had (which makes real tokens 503), a token whose
    # header could never be a channel's is refused outright: 401, and no fetch is started for it.
    monkeypatch.setattr(auth, "FETCH_TIMEOUT", aiohttp.ClientTimeout(total=0.3))
    async with silent_server() as silent:
        await serve_app(
            authenticated_settings(
                storage_connection, token_server[0], silent.url + "/v1/.well-known/openidconfiguration"
            )
        )
        result = await post(
            activities.teams_message("hi", channel.url), "Bearer " + forged_tokens(openid, channel.url)[forgery]
        )

    assert (result.status, result.body) == (401, {"error": {"message": "unauthorized"}})
    assert silent.connections == 0
    assert channel.received == []


async def test_cached_keys_outlive_a_key_server_outage(
    storage_connection, token_server, openid, channel, serve_app, monkeypatch
):
    monkeypatch.setattr(auth, "FETCH_TIMEOUT", aiohttp.ClientTimeout(total=0.3))
    app = await serve_app(authenticated_settings(storage_connection, token_server[0], openid.metadata_url))
    first = await post(
        activities.webchat_message("hi", channel.url), "Bearer " + openid.channel_token(APP_ID, channel.url)
    )
    async with silent_server() as silent:
        app.adapter.authenticator.keys.metadata_url = silent.url + "/metadata"
        monkeypatch.setattr(auth, "KEYS_MAX_AGE", 0.0)  # due for a refresh, which hangs
        later = await post(
            activities.webchat_message("hi", channel.url), "Bearer " + openid.channel_token(APP_ID, channel.url)
        )

    assert (first.status, later.status) == (200, 200) and len(channel.delivered()) == 2


async def test_local_mode_takes_no_token_and_ignores_one(local_app, channel):
    channel.expect_bearer(None)  # and sends none
    first, second = activities.webchat_message("hi", channel.url), activities.webchat_message("hi", channel.url)

    assert (await post(first, None)).status == 200
    assert (await post(second, "Bearer whatever")).status == 200
    assert len(channel.delivered()) == 2
    assert [r.authorization for r in channel.received] == [None, None]


async def test_single_tenant_apps_take_channel_tokens_and_get_their_own_from_their_tenant(
    storage_connection, openid, channel, serve_app
):
    app = await serve_app(
        authenticated_settings(
            storage_connection,
            "",
            openid.metadata_url,
            app_type="SingleTenant",
            app_tenant_id="contoso.onmicrosoft.com",
        )
    )
    tokens = app.adapter._tokens
    endpoint = tokens.endpoint
    # The channel's token is the same for both app types; only the bot's own token differs.
    tokens._token, tokens._expires_at = ACCESS_TOKEN, float("inf")
    result = await post(
        activities.webchat_message("hi", channel.url), "Bearer " + openid.channel_token(APP_ID, channel.url)
    )

    assert endpoint == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    assert result.status == 200 and len(channel.delivered()) == 1


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"MicrosoftAppId": APP_ID}, "MicrosoftAppPassword is not"),
        ({"MicrosoftAppPassword": "x"}, "MicrosoftAppId is not"),
        (
            {"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x", "MicrosoftAppType": "SingleTenant"},
            "needs MicrosoftAppTenantId",
        ),
        (
            {
                "MicrosoftAppId": APP_ID,
                "MicrosoftAppPassword": "x",
                "MicrosoftAppType": "UserAssignedMSI",
                "MicrosoftAppTenantId": "t",
            },
            "takes no MicrosoftAppPassword",
        ),
        (
            {"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x", "MicrosoftAppType": "FederatedCredential"},
            "MicrosoftAppType must be",
        ),
    ],
)
def test_settings_that_would_fail_open_or_later_fail_at_start(env, problem):
    with pytest.raises(SettingsError, match=problem):
        Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", **env})


def test_settings_never_show_secrets():
    settings = Settings(
        storage_connection="DefaultEndpointsProtocol=https;AccountKey=c2VjcmV0",
        app_id=APP_ID,
        app_password=APP_PASSWORD,
    )

    assert APP_PASSWORD not in repr(settings) and "AccountKey" not in repr(settings)
    assert APP_ID in repr(settings)


async def test_no_token_or_password_reaches_the_logs(authenticated_app, openid, channel, caplog):
    caplog.set_level(logging.DEBUG)
    inbound = openid.channel_token(APP_ID, channel.url)

    await post(activities.teams_message("help", channel.url), "Bearer " + inbound)
    await post(activities.teams_message("help", channel.url), "Bearer " + openid.channel_token("other", channel.url))
    await post(activities.teams_message("help", channel.url), "Bearer " + inbound + "x")

    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in (APP_PASSWORD, ACCESS_TOKEN, inbound, inbound.split(".")[2]):
        assert secret not in logged
