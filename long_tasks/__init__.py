"""Queue: runs long tasks the bot started in a turn (e.g. `report`) and delivers their results."""

import azure.functions as func

from proactive_bot import app


async def main(msg: func.QueueMessage, poison: func.Out[str]) -> None:
    result = await app.run_task(msg.get_body(), msg.id or "")
    if result.poison_reason is not None:
        # Straight to the poison queue, unchanged: running a malformed task again cannot help.
        poison.set(msg.get_body().decode("utf-8", "replace"))
