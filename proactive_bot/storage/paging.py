"""One page of a table query, and where the next one starts.

The cursor is the table service's continuation (a plain JSON-able dict), so a long walk (a
broadcast's audience, a team's roster) can go on in another queue message, on another instance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol, cast

from azure.data.tables import TableEntity
from azure.data.tables.aio import TableClient


class _Pages(Protocol):
    """What `query_entities(...).by_page()` really returns (the SDK's TableEntityPropertiesPaged)."""

    continuation_token: dict[str, str] | None

    def __anext__(self) -> Awaitable[AsyncIterator[TableEntity]]: ...


async def one_page(
    table: TableClient, query: str, parameters: dict[str, Any], cursor: dict[str, str] | None, size: int
) -> tuple[list[TableEntity], dict[str, str] | None]:
    """Up to `size` rows of `query` from `cursor` (None: the start), and the cursor of the next
    page (None: this was the last)."""
    paged = table.query_entities(query, parameters=parameters, results_per_page=size)
    # azure-core types every continuation token as `str` and by_page() as a bare AsyncIterator; the
    # table pager's token is the dict {"PartitionKey": ..., "RowKey": ...} and it is kept on the pager.
    pages = cast(_Pages, paged.by_page(continuation_token=cursor))  # type: ignore[arg-type]
    try:
        page = await pages.__anext__()
    except StopAsyncIteration:
        return [], None
    return [entity async for entity in page], pages.continuation_token
