"""GET /api/status[/n/{id}]: the status page of the notifications (its data from the front door's
API). Needs a function key, as the API does."""

import azure.functions as func

from proactive_bot.report import page


async def main(req: func.HttpRequest) -> func.HttpResponse:
    answer = await page.serve(req.route_params.get("path") or "", req.params.get("code"))
    return func.HttpResponse(answer.body, status_code=answer.status, headers=answer.headers, mimetype=answer.mimetype)
