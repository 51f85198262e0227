"""Delivery: putting one message in front of one stored recipient, and naming how it went."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from .channel import ChannelAdapter
from .connector import ConnectorError
from .references import ReferenceStore, StoredReference
from .service_urls import ServiceUrlNotAllowed

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    SENT = "sent"
    GONE = "gone"  # 403/404: the user blocked the bot or the conversation no longer exists
    THROTTLED = "throttled"  # 429: worth trying again later
    FAILED = "failed"  # anything else: transient or not, this attempt did not deliver


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    status: int | None = None
    detail: str = ""
    retry_after: float | None = None


_GONE_STATUSES = frozenset({403, 404})


class Delivery:
    def __init__(self, adapter: ChannelAdapter, references: ReferenceStore) -> None:
        self._adapter = adapter
        self._references = references

    async def send(self, recipient: StoredReference, activities: list[dict[str, Any]]) -> Result:
        try:
            await self._adapter.send_proactive(recipient.reference, activities)
        except ConnectorError as error:
            return await self._failed(recipient, error)
        except (aiohttp.ClientError, TimeoutError) as error:
            return Result(Outcome.FAILED, detail=f"{type(error).__name__}: {error}")
        except ServiceUrlNotAllowed as error:
            # Not transient: the stored address names a host the bot's token must not go to.
            return Result(Outcome.FAILED, detail=f"serviceUrl not allowed: {error}")
        return Result(Outcome.SENT, status=200)

    async def _failed(self, recipient: StoredReference, error: ConnectorError) -> Result:
        if error.status in _GONE_STATUSES:
            log.info(
                "recipient gone (%s %s) channel=%s conversation=%s: marked inactive",
                error.status, error.code, recipient.channel_id, recipient.conversation_id,
            )
            await self._references.mark_inactive(recipient, f"{error.status} {error.code}".strip())
            return Result(Outcome.GONE, error.status, str(error))
        if error.status == 429:
            return Result(Outcome.THROTTLED, 429, str(error), error.retry_after)
        return Result(Outcome.FAILED, error.status, str(error))


def message(text: str, **extra: Any) -> dict[str, Any]:
    """A message activity as the Connector API takes it."""
    return {"type": "message", "text": text, **extra}
