"""The shared budget's storage: one partition per app, one row per instance, its scopes' shares
as one JSON property (so a heartbeat is one write and a round one query, however many tenants)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from ..storage.keys import table_key

# Scopes one row lists at most: a Table string property holds 64 KiB (32 K characters), a
# Teams tenant's entry is about 60 (`"msteams:<tenant guid>":[123.4,50]`): 400 is ~24 K.
MAX_SCOPES = 400


@dataclass(frozen=True)
class Share:
    """One instance's part in one scope: what it wants and the most it may use (sends/s)."""

    demand: float
    granted: int


@dataclass(frozen=True)
class Row:
    """One instance's heartbeat, as read."""

    instance: str
    scopes: Mapping[str, Share]
    written: datetime  # the storage's Timestamp of the heartbeat
    etag: str = ""


class BudgetTable:
    """The budget's rows: one partition per app, one row per instance, its scopes as JSON."""

    def __init__(self, table: TableClient, app: str) -> None:
        self._table = table
        self._partition = table_key(app or "app")

    async def write(self, instance: str, scopes: Mapping[str, Share]) -> None:
        shares = {scope: [round(share.demand, 1), share.granted] for scope, share in scopes.items()}
        await self._table.upsert_entity(
            {"PartitionKey": self._partition, "RowKey": instance, "scopes": json.dumps(shares, separators=(",", ":"))},
            mode=UpdateMode.REPLACE,
        )

    async def read(self) -> list[Row]:
        """Every row. One that cannot be read raises ValueError: its grants are unknown, so the
        round fails (and falls back safely) rather than counting them as nothing."""
        rows = []
        query = self._table.query_entities("PartitionKey eq @p", parameters={"p": self._partition})
        async for entity in query:
            rows.append(
                Row(
                    instance=entity["RowKey"],
                    scopes=_shares(entity["RowKey"], entity.get("scopes")),
                    # Table Storage stamps every stored entity (None only for one never saved).
                    written=cast(datetime, entity.metadata["timestamp"]),
                    etag=entity.metadata["etag"] or "",
                )
            )
        return rows

    async def delete(self, instance: str, etag: str | None = None) -> None:
        """Remove a row; with `etag`, only if nobody wrote it since it was read."""
        condition = MatchConditions.IfNotModified if etag else MatchConditions.Unconditionally
        with contextlib.suppress(AzureError):
            await self._table.delete_entity(self._partition, instance, etag=etag, match_condition=condition)


def _shares(instance: str, raw: object) -> dict[str, Share]:
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else None
        if not isinstance(parsed, dict):
            raise ValueError("no scopes")
        return {str(scope): Share(float(demand), int(granted)) for scope, (demand, granted) in parsed.items()}
    except (TypeError, ValueError) as error:
        raise ValueError(f"budget row {instance!r} cannot be read: {error}") from error
