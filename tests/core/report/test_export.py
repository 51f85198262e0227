"""report.export: the CSV delivery report, written page by page (real Azurite)."""

from __future__ import annotations

import csv
import io

from proactive_bot import clock
from proactive_bot.notifications.records import RecipientState
from proactive_bot.report import export, recipients


async def rows_of(recorded, wanted=None):
    async for page in recipients.pages(recorded.table, recorded.id, wanted, clock.now(), size=10):
        yield page.rows


async def test_the_report_has_a_header_and_one_line_per_row(recorded):
    text = "".join([chunk async for chunk in export.csv_chunks(rows_of(recorded))])

    lines = list(csv.DictReader(io.StringIO(text)))
    assert list(lines[0]) == list(export.COLUMNS)
    assert len(lines) == 25
    assert sorted({line["state"] for line in lines}) == ["failed", "gone", "sent"]
    assert {line["httpStatus"] for line in lines if line["state"] == "gone"} == {"403"}


async def test_a_reason_never_starts_a_spreadsheet_formula(recorded):
    text = "".join([chunk async for chunk in export.csv_chunks(rows_of(recorded, RecipientState.FAILED))])

    reasons = [line["reason"] for line in csv.DictReader(io.StringIO(text))]
    assert reasons == ["'=HYPERLINK(bad) 400 BadArgument"] * 3


async def test_each_page_is_one_chunk(recorded):
    chunks = [chunk async for chunk in export.csv_chunks(rows_of(recorded))]

    assert chunks[0].startswith("userId,") and len(chunks) >= 4  # the header, then pages of at most 10
