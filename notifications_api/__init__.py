"""POST /api/notifications (send), GET /api/notifications/{id} (how it went), DELETE (cancel or
recall) and PATCH (edit) of /api/notifications/{id}, and POST /api/notifications/{id}/resend?state=unconfirmed
(send once more). Needs a function key."""

import azure.functions as func

from proactive_bot import app


async def main(req: func.HttpRequest) -> func.HttpResponse:
    notification_id = req.route_params.get("id")
    action = req.route_params.get("action")
    if req.method == "POST" and not notification_id:
        result = await app.accept_notification(req.get_body(), req.url.split("?")[0])
    elif req.method == "POST" and notification_id and action == "resend":
        status_url = req.url.split("?")[0].rsplit("/", 1)[0]
        result = await app.resend_notification(notification_id, req.params.get("state", ""), status_url)
    elif req.method == "GET" and notification_id and not action:
        result = await app.notification_status(notification_id, detail=req.params.get("detail") == "true")
    elif req.method == "DELETE" and notification_id and not action:
        result = await app.cancel_notification(notification_id, req.url)
    elif req.method == "PATCH" and notification_id and not action:
        result = await app.edit_notification(notification_id, req.get_body(), req.url)
    else:
        result = app.HttpResult(
            405,
            {
                "error": {
                    "message": (
                        "POST /api/notifications; GET, DELETE or PATCH /api/notifications/{id}; "
                        "POST /api/notifications/{id}/resend?state=unconfirmed"
                    )
                }
            },
        )
    return func.HttpResponse(
        result.json_body(), status_code=result.status, headers=result.headers, mimetype="application/json"
    )
