"""POST /api/notifications (send), GET /api/notifications/{id} (how it went; `?counts=recorded`: as last counted), DELETE (cancel or
recall) and PATCH (edit) of /api/notifications/{id}, and POST /api/notifications/{id}/resend?state=unconfirmed
(send once more). Also the delivery report: GET /api/notifications (the recent ones),
GET /api/notifications/{id}/recipients (a page of rows) and .../recipients.csv. Needs a function key."""

import azure.functions as func

from proactive_bot import app
from proactive_bot.report import endpoints as report


async def main(req: func.HttpRequest) -> func.HttpResponse:
    notification_id = req.route_params.get("id")
    action = req.route_params.get("action")
    if req.method == "POST" and not notification_id:
        result = await app.accept_notification(req.get_body(), req.url.split("?")[0])
    elif req.method == "POST" and notification_id and action == "resend":
        status_url = req.url.split("?")[0].rsplit("/", 1)[0]
        result = await app.resend_notification(notification_id, req.params.get("state", ""), status_url)
    elif req.method == "GET" and notification_id and not action and req.params.get("counts") == "recorded":
        result = await report.counted_status(notification_id)
    elif req.method == "GET" and notification_id and not action:
        result = await app.notification_status(notification_id, detail=req.params.get("detail") == "true")
    elif req.method == "GET" and not notification_id:
        result = await report.recent_notifications(req.params.get("offset"), req.params.get("size"))
    elif req.method == "GET" and notification_id and action == "recipients":
        params = req.params
        result = await report.recipients_page(
            notification_id, params.get("state"), params.get("cursor"), params.get("size")
        )
    elif req.method == "GET" and notification_id and action == "recipients.csv":
        answer = await report.recipients_csv(
            notification_id, req.params.get("state"), req.headers.get("Accept-Encoding")
        )
        if isinstance(answer, report.Answer):
            return func.HttpResponse(
                answer.body, status_code=answer.status, headers=answer.headers, mimetype=answer.mimetype
            )
        result = answer
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
                        "POST or GET /api/notifications; GET, DELETE or PATCH /api/notifications/{id}; "
                        "GET /api/notifications/{id}/recipients[.csv]; "
                        "POST /api/notifications/{id}/resend?state=unconfirmed"
                    )
                }
            },
        )
    return func.HttpResponse(
        result.json_body(), status_code=result.status, headers=result.headers, mimetype="application/json"
    )
