"""Queue (internal): walks broadcasts page by page and delivers batches of recipients."""

import azure.functions as func

from proactive_bot import app


async def main(msg: func.QueueMessage, poison: func.Out[str]) -> None:
    result = await app.process_work(msg.get_body(), msg.id or "", msg.insertion_time)
    if result.poison_reason is not None:
        poison.set(msg.get_body().decode("utf-8", "replace"))
