"""POST /api/notifications (send) and GET /api/notifications/{id} (how it went). Needs a function key."""

import azure.functions as func

from proactive_bot import app


async def main(req: func.HttpRequest) -> func.HttpResponse:
    notification_id = req.route_params.get("id")
    if req.method == "POST" and not notification_id:
        result = await app.accept_notification(req.get_body(), req.url.split("?")[0])
    elif req.method == "GET" and notification_id:
        result = await app.notification_status(notification_id, detail=req.params.get("detail") == "true")
    else:
        result = app.HttpResult(405, {"error": {"message": "POST /api/notifications or GET /api/notifications/{id}"}})
    return func.HttpResponse(
        result.json_body(), status_code=result.status, headers=result.headers, mimetype="application/json"
    )
