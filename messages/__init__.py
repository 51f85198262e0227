"""POST /api/messages: the bot's endpoint. Channels deliver every user activity here."""

import azure.functions as func

from proactive_bot import app


async def main(req: func.HttpRequest) -> func.HttpResponse:
    result = await app.receive_activity(req.get_body(), req.headers.get("Authorization"))
    return func.HttpResponse(result.json_body(), status_code=result.status, mimetype="application/json")
