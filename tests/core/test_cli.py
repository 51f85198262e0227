"""`python -m proactive_bot notify`: the Teams audiences build documents the contract accepts."""

from __future__ import annotations

from proactive_bot.cli import _parser, build_notification
from proactive_bot.notifications.contract import validate


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
