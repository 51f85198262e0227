"""`make run`'s banner: the command lines it prints for the Teams Playground work as printed."""

from __future__ import annotations

import shlex

from devtools import playground
from devtools.run import _teams_instructions
from proactive_bot.cli import _parser, build_notification
from proactive_bot.notifications.contract import validate

CLI = ".venv/bin/python -m proactive_bot "


def test_the_teams_banner_names_the_playground_and_cli_lines_for_its_mock_team():
    banner = _teams_instructions("http://127.0.0.1:7071", "a-key", "http://localhost:56150")
    lines = [line.strip() for line in banner.splitlines() if line.strip().startswith(CLI)]

    assert "http://localhost:56150" in banner and "export FUNCTION_KEY=a-key" in banner
    commands = [_parser().parse_args(shlex.split(line.split("   (")[0])[3:]) for line in lines]
    assert [c.command for c in commands] == ["notify", "status", "edit", "notify", "notify", "recall"]
    sent = [validate(build_notification(c)) for c in commands if c.command == "notify"]
    assert sent[0].to == {"teamId": playground.TEAM}
    assert sent[1].to["teamChannel"] == {"teamId": playground.TEAM, "channelId": playground.RELEASES}
    assert sent[2].to["teamChannel"]["replyTo"] == "v2.3"  # the post before it
    assert {c.url for c in commands} == {"http://127.0.0.1:7071"}


def test_the_mock_tenant_names_the_team_and_channel_the_banner_uses():
    config = playground.CONFIG.read_text("utf-8")

    assert f'id: "{playground.TEAM}"' in config and f'id: "{playground.RELEASES}"' in config
    assert config.count("aadObjectId: ") == 6  # Alex and the five users its schema allows
