"""The App Service / Functions managed identity endpoint, on loopback.

In Azure the platform sets IDENTITY_ENDPOINT and IDENTITY_HEADER in the app's environment; a GET
to the endpoint with `resource`, `api-version=2019-08-01` and (for a user-assigned identity)
`client_id`, carrying the header `X-IDENTITY-HEADER: $IDENTITY_HEADER`, answers
`{"access_token", "expires_on" (epoch seconds, a string), "resource", "token_type", "client_id"}`.
This stub speaks that protocol for the identities it is told about, so the bot's token path
(connector.TokenProvider) and azure-identity's ManagedIdentityCredential (storage) run for real,
offline. Its tokens are JWTs with the claims Azure Storage checks (issuer sts.windows.net, the
audience asked for, nbf/iat/exp), which is what Azurite's `--oauth basic` validates; they are
HMAC-signed with a random key, as nothing here verifies a signature.

    async with IdentityStub(client_ids=[CLIENT_ID]) as identity:
        monkeypatch.setenv("IDENTITY_ENDPOINT", identity.endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", identity.header)
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import jwt
from aiohttp import web

API_VERSION = "2019-08-01"
TENANT_ID = "72f988bf-0000-4000-8000-00000000c0de"
LIFETIME_SECONDS = 24 * 3600  # what Azure issues to managed identities


@dataclass(frozen=True)
class TokenRequest:
    resource: str
    client_id: str
    api_version: str
    header: str | None


class IdentityStub:
    def __init__(
        self, client_ids: Iterable[str], *, tenant_id: str = TENANT_ID, lifetime: int = LIFETIME_SECONDS
    ) -> None:
        self.client_ids = set(client_ids)
        self.tenant_id = tenant_id
        self.lifetime = lifetime
        self.header = secrets.token_hex(16)  # Azure rotates it; the app must read it, not guess it
        self.requests: list[TokenRequest] = []
        self.issued: list[str] = []
        self._key = secrets.token_bytes(32)
        self._runner: web.AppRunner | None = None
        self.endpoint = ""

    async def __aenter__(self) -> IdentityStub:
        app = web.Application()
        app.router.add_get("/msi/token", self._token)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.endpoint = f"http://127.0.0.1:{self._runner.addresses[0][1]}/msi/token"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def requests_for(self, resource: str) -> list[TokenRequest]:
        return [r for r in self.requests if r.resource.rstrip("/") == resource.rstrip("/")]

    async def _token(self, request: web.Request) -> web.Response:
        query = request.query
        asked = TokenRequest(
            resource=query.get("resource", ""),
            client_id=query.get("client_id", ""),
            api_version=query.get("api-version", ""),
            header=request.headers.get("X-IDENTITY-HEADER"),
        )
        self.requests.append(asked)
        if asked.header != self.header:
            return _error(401, "invalid_request", "X-IDENTITY-HEADER is missing or wrong")
        if asked.api_version != API_VERSION:
            return _error(400, "invalid_request", f"api-version must be {API_VERSION}")
        if not asked.resource:
            return _error(400, "invalid_request", "resource is required")
        if asked.client_id not in self.client_ids:
            # A client id of no identity assigned to the app (or none, and no system identity).
            return _error(400, "invalid_request", "Unable to load the proper Managed Identity.")
        now = int(time.time())
        expires_on = now + self.lifetime
        claims = {
            "aud": asked.resource,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": expires_on,
            "appid": asked.client_id,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, asked.client_id)),
            "tid": self.tenant_id,
            "idtyp": "app",
            "sub": asked.client_id,
        }
        token = jwt.encode(claims, self._key, algorithm="HS256")
        self.issued.append(token)
        return web.json_response(
            {
                "access_token": token,
                "expires_on": str(expires_on),
                "resource": asked.resource,
                "token_type": "Bearer",
                "client_id": asked.client_id,
            }
        )


def _error(status: int, code: str, description: str) -> web.Response:
    return web.json_response({"error": code, "error_description": description}, status=status)
