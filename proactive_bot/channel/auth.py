"""Inbound authentication: is this request really from a Bot Framework channel, for this bot?

The rules are botbuilder's own (`botframework.connector.auth`): the issuer is the Bot Framework,
the signing key is one the Bot Framework publishes and it endorses the activity's channel, the
algorithm is RSA, the token is within its lifetime (5 minutes of clock skew), the audience is our
app id, and the token's serviceurl claim is the activity's serviceUrl. We call botbuilder's
validators for all of that; what we replace is how the signing keys are fetched. botbuilder gets
the OpenID metadata and the JWKS with synchronous `requests`, on the event loop, with no timeout:
one slow answer from login.botframework.com would freeze every invocation in the worker. Here
the keys come through aiohttp with a timeout, are cached for a day, and one fetch is shared by
every request waiting for it.

Only channel tokens are accepted, for both app types. Emulator and skill tokens (issued by
Entra ID, not by the Bot Framework) carry no serviceurl claim, so accepting them would let their
holder choose where the bot sends its replies, and with them its own token. MicrosoftAppType
changes where the bot gets its own outbound token (connector.py), not who may call it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticationConfiguration,
    AuthenticationConstants,
    ChannelValidation,
    ClaimsIdentity,
    JwtTokenExtractor,
    JwtTokenValidation,
    SimpleCredentialProvider,
)
from botframework.connector.auth.verify_options import VerifyOptions
from jwt.algorithms import RSAAlgorithm

from ..settings import Settings

log = logging.getLogger(__name__)

CHANNEL_ISSUER = AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
DEFAULT_METADATA_URL = AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
CLOCK_SKEW_SECONDS = 5 * 60  # botbuilder's tolerance
CHANNEL_ALGORITHM = "RS256"  # what the Bot Framework signs channel tokens with
# Each of the two requests (metadata, then keys); read at call time so tests can shorten it.
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=5)
KEYS_MAX_AGE = 24 * 3600.0  # botbuilder refreshes daily too
# A token naming an unknown key triggers a refetch (keys rotate), but not more often than this,
# so made-up key ids cannot turn requests into fetches.
UNKNOWN_KEY_REFETCH = 300.0
# After a failed fetch, requests fail fast for this long instead of each waiting for a timeout.
FAILED_FETCH_BACKOFF = 10.0
MAX_KEYS_BYTES = 1024 * 1024


class AuthenticationError(Exception):
    """The request is not from a channel we trust; answered with 401."""


class AuthenticationUnavailable(Exception):
    """The signing keys could not be fetched, so no token can be checked now; answered with 503."""


@dataclass(frozen=True)
class SigningKey:
    """What botbuilder's JwtTokenExtractor reads from a key: the key and its endorsements."""

    public_key: Any
    endorsements: list[str]


class SigningKeys:
    """The keys published at one OpenID metadata URL, fetched with aiohttp and cached."""

    def __init__(self, session: aiohttp.ClientSession, metadata_url: str) -> None:
        self._session = session
        self.metadata_url = metadata_url
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at = -math.inf
        self._failed_at = -math.inf
        self._generation = 0  # bumped by every fetch attempt, so waiters know one happened
        self._lock = asyncio.Lock()

    async def get(self, key_id: str | None) -> SigningKey:
        """The key a token names; botbuilder's extractor awaits this."""
        if time.monotonic() - self._fetched_at > KEYS_MAX_AGE:
            await self._refresh(self._generation)
        key = self._keys.get(key_id or "")
        if key is None and time.monotonic() - self._fetched_at > UNKNOWN_KEY_REFETCH:
            await self._refresh(self._generation)
            key = self._keys.get(key_id or "")
        if key is None:
            if not self._keys:
                raise AuthenticationUnavailable("the channel's signing keys could not be fetched")
            raise AuthenticationError("the token names no published signing key")
        return key

    async def _refresh(self, seen_generation: int) -> None:
        async with self._lock:
            if self._generation != seen_generation:
                return  # another request fetched (or failed to) while this one waited
            if time.monotonic() - self._failed_at < FAILED_FETCH_BACKOFF:
                return
            try:
                self._keys = await self._fetch()
                self._fetched_at = time.monotonic()
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as error:
                self._failed_at = time.monotonic()
                log.error(
                    "could not fetch the channel's signing keys from %s (%s: %s)%s",
                    self.metadata_url,
                    type(error).__name__,
                    error,
                    "; keeping the cached keys" if self._keys else "",
                )
            finally:
                self._generation += 1

    async def _fetch(self) -> dict[str, SigningKey]:
        metadata = await self._get_json(self.metadata_url)
        document = await self._get_json(str(metadata["jwks_uri"]))
        keys: dict[str, SigningKey] = {}
        for jwk in document["keys"]:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            try:
                public_key = RSAAlgorithm.from_jwk(jwk)
            except Exception:
                log.warning("skipping signing key %s: not an RSA public key", jwk["kid"])
                continue
            endorsements = jwk.get("endorsements") or []
            keys[jwk["kid"]] = SigningKey(public_key, [e for e in endorsements if isinstance(e, str)])
        if not keys:
            raise ValueError("the key set holds no usable RSA keys")
        return keys

    async def _get_json(self, url: str) -> Any:
        async with self._session.get(url, timeout=FETCH_TIMEOUT) as resp:
            resp.raise_for_status()
            body = await resp.content.read(MAX_KEYS_BYTES + 1)
        if len(body) > MAX_KEYS_BYTES:
            raise ValueError(f"{url} answered more than {MAX_KEYS_BYTES} bytes")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return document


class _ChannelTokenExtractor(JwtTokenExtractor):  # type: ignore[misc]  # the SDK ships no type hints
    """botbuilder's extractor (issuer, endorsements, algorithm, signature, lifetime) on our keys.

    The base constructor is skipped on purpose: it registers a `requests`-based key fetcher in a
    process-wide cache, which is exactly what this module avoids.
    """

    def __init__(self, keys: SigningKeys) -> None:  # pylint: disable=super-init-not-called
        self.validation_parameters = VerifyOptions(
            issuer=[CHANNEL_ISSUER],
            audience=None,  # checked by ChannelValidation.validate_identity
            clock_tolerance=CLOCK_SKEW_SECONDS,
            ignore_expiration=False,
        )
        self.validation_parameters.algorithms = list(AuthenticationConstants.ALLOWED_SIGNING_ALGORITHMS)
        self.open_id_metadata = keys


class ChannelAuthenticator:
    """Checks the Authorization header of one inbound activity."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._local_mode = settings.local_mode
        self._credentials = SimpleCredentialProvider(settings.app_id, settings.app_password)
        self.keys = SigningKeys(session, settings.open_id_metadata or DEFAULT_METADATA_URL)
        self._extractor = _ChannelTokenExtractor(self.keys)

    async def authenticate(self, activity: Activity, auth_header: str | None) -> ClaimsIdentity:
        if self._local_mode:
            # No app id: there is nothing to check a token against, and no token of ours to
            # protect, so the Emulator's unauthenticated requests are welcome (as in botbuilder).
            return ClaimsIdentity({}, True, AuthenticationConstants.ANONYMOUS_AUTH_TYPE)
        if not auth_header:
            raise AuthenticationError("no Authorization header")
        _check_header(auth_header)
        try:
            return await self._validate(activity, auth_header)
        except (AuthenticationError, AuthenticationUnavailable):
            raise
        except Exception as error:
            # Only the type and message (neither ever holds the token itself), quoted and cut
            # short: claims in them are the caller's text.
            raise AuthenticationError(f"{type(error).__name__}: {str(error)[:200]!r}") from None

    async def _validate(self, activity: Activity, auth_header: str) -> ClaimsIdentity:
        identity = await self._extractor.get_identity_from_auth_header(auth_header, activity.channel_id)
        identity = await ChannelValidation.validate_identity(identity, self._credentials)
        if "exp" not in identity.claims:
            # PyJWT only checks an expiry that is there; a token without one would never expire.
            raise AuthenticationError("the token has no expiry")
        if identity.get_claim_value(AuthenticationConstants.SERVICE_URL_CLAIM) != activity.service_url:
            # The claim binds the token to where replies go; without it a stolen token could
            # send the bot (and its own token) anywhere.
            raise AuthenticationError("the token's serviceurl claim does not match the activity")
        await JwtTokenValidation.validate_claims(AuthenticationConfiguration(), identity.claims)
        return identity


def _check_header(auth_header: str) -> None:
    """Refuse, before any key is fetched, a token that cannot be a channel's: Bot Framework
    channel tokens are RS256 and name their signing key (`kid`). `alg: none` and friends then
    get 401 even while the signing keys cannot be fetched, instead of a 503 that invites retries."""
    scheme, _, token = auth_header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("the Authorization header is not a bearer token")
    try:
        header = jwt.get_unverified_header(token.strip())
    except jwt.PyJWTError as error:
        raise AuthenticationError(f"the token does not parse: {type(error).__name__}") from None
    if header.get("alg") != CHANNEL_ALGORITHM:
        raise AuthenticationError(f"the token's algorithm is not {CHANNEL_ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthenticationError("the token names no signing key (kid)")
