"""FunctionRpc messages: function.json and trigger values in, the worker's answers out.

What the Functions host puts into `RpcFunctionMetadata`, `TypedData` and the trigger metadata
of an `InvocationRequest`, and how it reads `InvocationResponse` outputs back, for the triggers
and outputs this host supports. `protos` is the generated FunctionRpc module (worker.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import azure.functions as func
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from .functions import Binding, FunctionSpec


def function_metadata(protos: ModuleType, spec: FunctionSpec, function_id: str) -> Any:
    """function.json as the host sends it in a FunctionLoadRequest."""
    bindings = (spec.trigger, *spec.outputs)
    return protos.RpcFunctionMetadata(
        name=spec.name,
        function_id=function_id,
        directory=str(spec.directory),
        script_file=str(spec.script_file),
        entry_point=spec.entry_point,
        language="python",
        bindings={b.name: _binding_info(protos, b) for b in bindings},
        raw_bindings=[json.dumps(_raw_binding(b)) for b in bindings],
    )


def _binding_info(protos: ModuleType, binding: Binding) -> Any:
    data_type = str(binding.get("dataType") or "undefined").lower()
    return protos.BindingInfo(
        type=binding.type,
        direction=getattr(protos.BindingInfo.Direction, binding.direction),
        data_type=getattr(protos.BindingInfo.DataType, data_type),
    )


def _raw_binding(binding: Binding) -> dict[str, Any]:
    return {"name": binding.name, "type": binding.type, "direction": binding.direction, **binding.properties}


# --- trigger values in ----------------------------------------------------------------------


def trigger_data(protos: ModuleType, function: str, value: Any) -> tuple[Any, dict[str, Any]]:
    """The trigger's TypedData and its trigger metadata, as the host fills them."""
    if isinstance(value, func.HttpRequest):
        # The worker announces RpcHttpTriggerMetadataRemoved: an HTTP call carries no metadata.
        return protos.TypedData(http=_rpc_http(protos, value)), {}
    if isinstance(value, QueueMessage):
        return _queue_data(protos, value), {**_queue_metadata(protos, value), "sys": _sys(protos, function)}
    if isinstance(value, TimerRequest):
        info = {"Schedule": value.schedule, "ScheduleStatus": value.schedule_status, "IsPastDue": value.past_due}
        return protos.TypedData(json=json.dumps(info)), {"sys": _sys(protos, function)}
    raise TypeError(f"no FunctionRpc form for a trigger value of type {type(value).__name__}")


def _rpc_http(protos: ModuleType, request: func.HttpRequest) -> Any:
    return protos.RpcHttp(
        method=request.method,
        url=request.url,
        # The host lower-cases header names (and joins repeated ones) before it sends them.
        headers={name.lower(): value for name, value in request.headers.items()},
        query=dict(request.params),
        params=dict(request.route_params),
        # The worker announces RawHttpBodyBytes: the body goes as bytes, never parsed.
        body=protos.TypedData(bytes=request.get_body()),
    )


def _queue_data(protos: ModuleType, message: QueueMessage) -> Any:
    body = message.get_body()
    try:
        return protos.TypedData(string=body.decode("utf-8"))
    except UnicodeDecodeError:
        return protos.TypedData(bytes=body)


def _queue_metadata(protos: ModuleType, message: QueueMessage) -> dict[str, Any]:
    # The Storage extension's binding data: strings as strings, the rest JSON-serialized.
    metadata: dict[str, Any] = {"Id": protos.TypedData(string=message.id or "")}
    if message.pop_receipt is not None:
        metadata["PopReceipt"] = protos.TypedData(string=message.pop_receipt)
    if message.dequeue_count is not None:
        metadata["DequeueCount"] = protos.TypedData(json=json.dumps(message.dequeue_count))
    for key, moment in (
        ("InsertionTime", message.insertion_time),
        ("ExpirationTime", message.expiration_time),
        ("NextVisibleTime", message.time_next_visible),
    ):
        if moment is not None:
            metadata[key] = protos.TypedData(json=json.dumps(moment.isoformat()))
    return metadata


def _sys(protos: ModuleType, function: str) -> Any:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return protos.TypedData(json=json.dumps({"MethodName": function, "UtcNow": now, "RandGuid": str(uuid.uuid4())}))


# --- outputs back ---------------------------------------------------------------------------


def output_values(response: Any, outputs: tuple[Binding, ...]) -> dict[str, Any]:
    """Each output binding's value by name ($return included); None where nothing was set."""
    data = {binding.name: binding.data for binding in response.output_data}
    values: dict[str, Any] = {}
    for binding in outputs:
        typed = response.return_value if binding.name == "$return" else data.get(binding.name)
        values[binding.name] = _value(typed, binding)
    return values


def _value(typed: Any, binding: Binding) -> Any:
    kind = typed.WhichOneof("data") if typed is not None else None
    if kind is None:
        return None
    if kind == "http":
        return _http_response(typed.http)
    if kind == "json" and binding.type == "queue":
        return _queue_json(typed.json)
    return getattr(typed, kind)


def _http_response(http: Any) -> func.HttpResponse:
    body = http.body
    kind = body.WhichOneof("data")
    raw = getattr(body, kind) if kind else b""
    headers: Mapping[str, str] = dict(http.headers)
    mimetype, charset = _content_type(headers)
    return func.HttpResponse(
        raw if isinstance(raw, bytes) else str(raw).encode("utf-8"),
        status_code=int(http.status_code or 200),
        headers=headers,
        mimetype=mimetype,
        charset=charset,
    )


def _content_type(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The mimetype and charset the worker put in Content-Type: HttpResponse would otherwise say
    text/plain whatever the function chose (the host answers with the header, so must we)."""
    value = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if not value:
        return None, None
    mimetype, _, params = value.partition(";")
    charset = next(
        (p.split("=", 1)[1].strip() for p in params.split(";") if p.strip().lower().startswith("charset=")), None
    )
    return mimetype.strip(), charset


def _queue_json(text: str) -> Any:
    # A list output arrives as one JSON array: one message per item, as the host sends them.
    document = json.loads(text)
    if isinstance(document, list):
        return [item if isinstance(item, str) else json.dumps(item) for item in document]
    return text
