"""How the tests call the stub: URLs encoded as botbuilder encodes them, message bodies, a POST
that returns (status, body, headers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from devtools.connector_stub import ConnectorStub


def conversation_url(stub: ConnectorStub, conversation_id: str, *rest: str) -> URL:
    """Encode path segments as botbuilder (msrest) does: quote(..., safe='')."""
    segments = ["v3", "conversations", quote(conversation_id, safe="")]
    segments += [quote(part, safe="") for part in rest]
    # encoded=True: yarl would otherwise normalise %3A back to ":" and hide decoding bugs.
    return URL(stub.url + "/".join(segments), encoded=True)


def message(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "text": text, **extra}


async def post(
    http: aiohttp.ClientSession, url: URL | str, body: Any, **kwargs: Any
) -> tuple[int, Any, Mapping[str, str]]:
    async with http.post(url, json=body, **kwargs) as response:
        payload = await response.json() if response.content_length else None
        return response.status, payload, response.headers
