"""devtools/funchost/rpc.py: what the host puts into FunctionRpc messages, and reads back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from devtools.funchost import rpc
from devtools.funchost.functions import Binding, FunctionSpec
from devtools.funchost.worker import available, load_protos

pytestmark = pytest.mark.skipif(not available(), reason="the generated protos ship with azure-functions-runtime-v1")

INSERTED = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def protos():
    return load_protos()


def test_a_queue_message_goes_as_a_string_with_the_storage_metadata(protos) -> None:
    message = QueueMessage(id="m-1", body=b'{"a": 1}', dequeue_count=3, pop_receipt="pr", insertion_time=INSERTED)

    data, metadata = rpc.trigger_data(protos, "queue_notify", message)

    assert data.string == '{"a": 1}'
    assert metadata["Id"].string == "m-1"
    assert metadata["PopReceipt"].string == "pr"
    assert json.loads(metadata["DequeueCount"].json) == 3
    assert json.loads(metadata["InsertionTime"].json) == "2026-12-03T08:00:00+00:00"
    assert json.loads(metadata["sys"].json)["MethodName"] == "queue_notify"


def test_a_binary_queue_message_goes_as_bytes(protos) -> None:
    data, _ = rpc.trigger_data(protos, "f", QueueMessage(id="m", body=b"\xff\x00"))

    assert data.bytes == b"\xff\x00"


def test_an_http_request_goes_as_rpc_http_with_lower_case_header_names_and_a_bytes_body(protos) -> None:
    request = func.HttpRequest(
        "POST", "http://127.0.0.1/api/x/7?q=1", headers={"X-Thing": "A"}, params={"q": "1"},
        route_params={"id": "7"}, body=b"{}",
    )  # fmt: skip

    data, metadata = rpc.trigger_data(protos, "x", request)

    assert (data.http.method, dict(data.http.headers), data.http.body.bytes) == ("POST", {"x-thing": "A"}, b"{}")
    assert (dict(data.http.query), dict(data.http.params)) == ({"q": "1"}, {"id": "7"})
    assert metadata == {}  # the worker announces RpcHttpTriggerMetadataRemoved


def test_a_timer_tick_goes_as_the_hosts_json(protos) -> None:
    data, _ = rpc.trigger_data(protos, "t", TimerRequest(past_due=True, schedule_status={"Last": None}))

    assert json.loads(data.json) == {"Schedule": {}, "ScheduleStatus": {"Last": None}, "IsPastDue": True}


def test_function_json_becomes_rpc_function_metadata(protos, tmp_path: Path) -> None:
    trigger = Binding("msg", "queueTrigger", "in", {"queueName": "q"})
    poison = Binding("poison", "queue", "out", {"queueName": "q-poison"})
    spec = FunctionSpec("f", tmp_path / "f", tmp_path / "f" / "__init__.py", "main", trigger, (poison,))

    metadata = rpc.function_metadata(protos, spec, "id-1")

    assert metadata.bindings["msg"].direction == protos.BindingInfo.Direction.Value("in")
    assert metadata.bindings["poison"].type == "queue"
    assert [json.loads(raw)["queueName"] for raw in metadata.raw_bindings] == ["q", "q-poison"]


def test_a_list_queue_output_comes_back_as_one_message_per_item(protos) -> None:
    poison = Binding("out", "queue", "out", {})
    response = protos.InvocationResponse(
        output_data=[protos.ParameterBinding(name="out", data=protos.TypedData(json=json.dumps(["a", {"b": 1}])))]
    )

    assert rpc.output_values(response, (poison,)) == {"out": ["a", '{"b": 1}']}
