import json

import azure.functions as func


async def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    if req.params.get("fail"):
        raise RuntimeError("asked to fail")
    name = req.route_params.get("name") or req.params.get("name") or "world"
    payload = {
        "greeting": f"Hello, {name}",
        "method": req.method,
        "function": context.function_name,
        "invocation_id": context.invocation_id,
        "body": req.get_body().decode("utf-8"),
    }
    return func.HttpResponse(json.dumps(payload), mimetype="application/json",
                             headers={"X-Sample": "yes"})
