"""Queue: delivers what other systems enqueue (contract: proactive_bot/schemas/notification.v1.schema.json)."""

import azure.functions as func

from proactive_bot import app


async def main(msg: func.QueueMessage, poison: func.Out[str]) -> None:
    result = await app.process_notification(msg.get_body(), msg.id or "", msg.insertion_time)
    if result.poison_reason is not None:
        # Straight to the poison queue, unchanged: retrying a malformed message cannot help.
        poison.set(msg.get_body().decode("utf-8", "replace"))
