"""One page of a query at a time: every row once, and a cursor that survives JSON."""

from __future__ import annotations

import json

from proactive_bot.storage.paging import one_page


async def test_pages_walk_every_row_once_and_the_last_has_no_cursor(new_table):
    table = await new_table()
    for n in range(5):
        await table.create_entity({"PartitionKey": "p", "RowKey": f"r{n}", "n": n})
    seen, cursor, pages = [], None, 0
    while True:
        rows, cursor = await one_page(table, "PartitionKey eq @pk", {"pk": "p"}, cursor, 2)
        seen += [row["n"] for row in rows]
        pages += 1
        if cursor is None:
            break
        cursor = json.loads(json.dumps(cursor))  # as a work message carries it
    assert sorted(seen) == list(range(5)) and pages == 3


async def test_a_query_that_matches_nothing_is_one_empty_last_page(new_table):
    table = await new_table()

    assert await one_page(table, "PartitionKey eq @pk", {"pk": "nobody"}, None, 10) == ([], None)
