"""The command line: notify (Teams audiences, a schedule), cancel/recall, edit and status against a front door."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from proactive_bot import cli
from proactive_bot.cli import _parser, build_notification
from proactive_bot.notifications.contract import validate


@pytest.fixture
def front_door():
    """A loopback HTTP server that records requests and answers like /api/notifications."""
    seen: list[tuple[str, str, dict | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            seen.append((self.command, self.path, body))
            if self.command == "GET":
                status, payload = (
                    200,
                    {
                        "id": "n1",
                        "state": "cancelled",
                        "counts": {"recipients": 3, "recalled": 2, "cancelled": 1, "read": 0},
                    },
                )
            else:
                status, payload = 202, {"id": "n1", "status": "http://x/api/notifications/n1"}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_notify_with_a_schedule_then_edit_recall_and_status(front_door, capsys):
    url, seen = front_door

    notified = cli.main(
        [
            "notify",
            "--all",
            "--text",
            "hi",
            "--id",
            "n1",
            "--url",
            url,
            "--not-before",
            "2026-12-24T09:00:00+01:00",
            "--expires-at",
            "2026-12-24T10:00:00+01:00",
        ]
    )
    edited = cli.main(["edit", "n1", "--text", "hello", "--url", url])
    recalled = cli.main(["recall", "n1", "--url", url])
    cancelled = cli.main(["cancel", "n1", "--url", url])
    resent = cli.main(["resend", "n1", "--url", url])
    status = cli.main(["status", "n1", "--url", url])

    assert (notified, edited, recalled, cancelled, resent, status) == (0, 0, 0, 0, 0, 0)
    assert [(method, path) for method, path, _ in seen] == [
        ("POST", "/api/notifications"),
        ("PATCH", "/api/notifications/n1"),
        ("DELETE", "/api/notifications/n1"),
        ("DELETE", "/api/notifications/n1"),
        ("POST", "/api/notifications/n1/resend?state=unconfirmed"),
        ("GET", "/api/notifications/n1"),
    ]
    assert seen[0][2]["notBefore"] == "2026-12-24T09:00:00+01:00" and seen[0][2]["expiresAt"]
    assert seen[1][2] == {"text": "hello"}
    printed = capsys.readouterr()
    assert "n1: cancelled, 3 recipient(s): recalled 2, cancelled 1" in printed.err  # for people
    status_json = printed.out[printed.out.index("{\n") :]  # the last command's output, indented
    assert json.loads(status_json)["state"] == "cancelled"


def test_a_function_key_that_starts_with_a_dash_is_taken_as_the_key(front_door):
    url, seen = front_door

    assert cli.main(["status", "n1", "--url", url, "--key", "-Xy_key"]) == 0
    assert seen == [("GET", "/api/notifications/n1", None)]


def test_a_time_without_offset_or_an_empty_edit_is_refused_before_any_request(front_door, capsys):
    url, seen = front_door

    assert cli.main(["notify", "--all", "--text", "x", "--url", url, "--not-before", "2026-12-24T09:00"]) == 2
    assert cli.main(["edit", "n1", "--url", url]) == 2
    assert seen == []
    assert "offset" in capsys.readouterr().err


def test_a_front_door_that_does_not_answer_is_a_clear_error_not_a_traceback(capsys):
    from devtools.azurite import free_port

    nobody = f"http://127.0.0.1:{free_port()}"

    assert cli.main(["status", "n1", "--url", nobody]) == 2
    assert cli.main(["notify", "--all", "--text", "hi", "--url", nobody]) == 2
    err = capsys.readouterr().err
    assert err.count("no answer from the front door") == 2 and "Traceback" not in err


def document(*argv: str) -> dict:
    built = build_notification(_parser().parse_args(["notify", *argv, "--text", "hi", "--id", "n1"]))
    validate(built)
    return built["to"]


def test_teams_audiences_from_the_command_line(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("c7e1f7d0-0000-4000-8000-000000000001\n\nc7e1f7d0-0000-4000-8000-000000000002\n")

    assert document("--team", "19:a@thread.tacv2") == {"teamId": "19:a@thread.tacv2"}
    assert document("--all", "--include-roster") == {"all": True, "includeRoster": True}
    assert document("--aad-list", str(ids), "--tenant", "t1") == {
        "aadObjectIds": ["c7e1f7d0-0000-4000-8000-000000000001", "c7e1f7d0-0000-4000-8000-000000000002"],
        "tenantId": "t1",
    }
    assert document("--channel-post", "19:a@thread.tacv2", "19:b@thread.tacv2", "--reply-to", "n0") == {
        "teamChannel": {"teamId": "19:a@thread.tacv2", "channelId": "19:b@thread.tacv2", "replyTo": "n0"}
    }


def test_the_summary_names_edits_and_recalls_that_did_not_take_with_the_channels_reason():
    body = {"id": "n1", "state": "cancelled", "counts": {"recipients": 7, "sent": 7, "unsupported": 6}}
    refused = "recall: 501 DeleteActivityAPINotImplemented: The API to delete activity is not implemented yet"
    rows = [{"change": "unsupported", "detail": refused}] * 6 + [{"change": "", "detail": ""}]

    assert cli.summary(body, rows) == (
        "n1: cancelled, 7 recipient(s): sent 7, unsupported 6; recall unsupported by the channel for 6: "
        "501 DeleteActivityAPINotImplemented: The API to delete activity is not implemented yet"
    )
    assert cli.summary(body) == "n1: cancelled, 7 recipient(s): sent 7, unsupported 6"  # no rows asked for


def test_the_summary_names_the_lane_the_notification_is_delivered_in():
    body = {"id": "n2", "class": "urgent", "state": "done", "counts": {"recipients": 1, "sent": 1}}

    assert cli.summary(body) == "n2 (urgent): done, 1 recipient(s): sent 1"


def test_notify_asks_for_high_priority_when_told():
    argv = ["notify", "--all", "--text", "evacuate", "--id", "n3", "--priority", "high"]

    built = build_notification(_parser().parse_args(argv))

    assert validate(built).priority.value == "high"
