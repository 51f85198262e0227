"""The Bot Framework's token issuer, on loopback: OpenID metadata, a JWKS, and signed channel tokens.

Azure Bot Service signs every request to a bot with a key it publishes at
https://login.botframework.com/v1/.well-known/openidconfiguration (setting `BotOpenIdMetadata`).
This stub publishes a test RSA key the same way (with `kid` and the channel `endorsements` the
real keys carry) and mints tokens with the real claims, so the app's token checks run for real,
offline. It also answers the bot's own client-credentials requests (setting `BotTokenEndpoint`),
as login.microsoftonline.com does, with an opaque access token.

    async with OpenIdStub() as openid:
        settings = Settings(..., open_id_metadata=openid.metadata_url)
        header = "Bearer " + openid.channel_token(app_id, service_url)
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://api.botframework.com"
ENDORSEMENTS = ("msteams", "webchat", "directline", "emulator", "slack", "telegram", "skype")


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OpenIdStub:
    def __init__(self, *, endorsements: tuple[str, ...] = ENDORSEMENTS) -> None:
        self.key = new_key()
        self.kid = f"test-{uuid.uuid4().hex[:8]}"
        self.endorsements = list(endorsements)
        self.metadata_requests = 0
        self.keys_requests = 0
        self.token_requests: list[dict[str, str]] = []
        self.access_token = f"access-{uuid.uuid4().hex}"
        self.token_lifetime = 3599  # seconds (`expires_in`); the bot refreshes 5 minutes early
        self.token_outage: int | None = None  # while set, token requests are answered this status
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/v1/.well-known/openidconfiguration"

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/botframework.com/oauth2/v2.0/token"

    async def __aenter__(self) -> OpenIdStub:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def rotate(self) -> None:
        """Publish a new key (the old one is gone), as the Bot Framework does every few weeks."""
        self.key = new_key()
        self.kid = f"test-{uuid.uuid4().hex[:8]}"

    def jwk(self) -> dict[str, Any]:
        key = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {**key, "kid": self.kid, "use": "sig", "endorsements": self.endorsements}

    async def _metadata(self, request: web.Request) -> web.Response:
        self.metadata_requests += 1
        return web.json_response(
            {
                "issuer": ISSUER,
                "authorization_endpoint": "https://invalid.example/v1/.well-known/no-authorization",
                "jwks_uri": f"{self.url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        self.keys_requests += 1
        return web.json_response({"keys": [self.jwk()]})

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        if self.token_outage is not None:  # login.microsoftonline.com having an incident
            return web.json_response({"error": "temporarily_unavailable"}, status=self.token_outage)
        if form.get("grant_type") != "client_credentials" or not form.get("client_secret"):
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response(
            {"token_type": "Bearer", "expires_in": self.token_lifetime, "access_token": self.access_token}
        )

    def channel_claims(self, app_id: str, service_url: str, **changes: Any) -> dict[str, Any]:
        """The claims Azure Bot Service puts in a token to a bot; `changes` override (None drops)."""
        now = int(time.time())
        claims = {
            "serviceurl": service_url,
            "nbf": now - 5,
            "exp": now + 3600,
            "iss": ISSUER,
            "aud": app_id,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        algorithm: str = "RS256",
    ) -> str:
        return jwt.encode(claims, key or self.key, algorithm=algorithm, headers={"kid": kid or self.kid})

    def channel_token(self, app_id: str, service_url: str, **changes: Any) -> str:
        return self.sign(self.channel_claims(app_id, service_url, **changes))
