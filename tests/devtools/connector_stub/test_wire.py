"""The Connector's wire shapes the local channels share: ErrorResponse bodies, activity lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools.connector_stub.wire import describe_activity, error_body, error_code_for

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "BadArgument"),
        (401, "Unauthorized"),
        (403, "ConversationBlockedByUser"),
        (404, "ConversationNotFound"),
        (412, "PreconditionFailed"),
        (413, "MessageSizeTooBig"),
        (429, "Throttled"),
        (500, "ServiceError"),
        (502, "ServiceError"),
        (409, "Conflict"),  # no Teams code: the HTTP phrase, without spaces
        (405, "MethodNotAllowed"),
    ],
)
def test_error_code_for(status: int, code: str) -> None:
    assert error_code_for(status) == code


def test_error_body_has_the_connector_error_response_shape() -> None:
    assert error_body("ConversationBlockedByUser") == {
        "error": {
            "code": "ConversationBlockedByUser",
            "message": "User blocked the conversation with the bot.",
        }
    }
    assert error_body("BadArgument", "since: a count") == {
        "error": {"code": "BadArgument", "message": "since: a count"}
    }
    assert error_body("SomethingElse") == {"error": {"code": "SomethingElse", "message": "SomethingElse"}}


@pytest.mark.parametrize(
    ("activity", "expected"),
    [
        ({"type": "message", "text": "a\r\nb"}, "a \u23ce b"),
        ({"type": "typing"}, "<typing>"),
        ({"type": "event", "text": "ping"}, "<event> ping"),
        ({}, "<?>"),
        (
            {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.hero"}]},
            "[1 attachment: hero card]",
        ),
        (
            {"type": "message", "text": "t", "suggestedActions": {"actions": [{"value": "v"}, "junk"]}},
            "t [actions: v]",
        ),
    ],
)
def test_describe_activity(activity: dict[str, Any], expected: str) -> None:
    assert describe_activity(activity) == expected


def test_importing_the_wire_helpers_loads_no_server() -> None:
    probe = (
        "import sys; import devtools.connector_stub.wire; "
        "print(sorted(m for m in ('devtools.connector_stub.server', 'aiohttp') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.strip() == "[]"
