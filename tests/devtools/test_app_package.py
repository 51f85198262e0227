"""The Teams app package: the manifest is valid for the schema version it declares (the schemas
come from the npm package @microsoft/app-manifest, no network), and `make package` zips it."""

from __future__ import annotations

import json
import re
import struct
import zipfile
import zlib

import jsonschema
import pytest

from devtools import app_package
from devtools.app_package import PACKAGE_SOURCE, PackageError
from tests.conftest import APP_ID

SCHEMAS = app_package.REPO_ROOT / "node_modules" / "@microsoft" / "app-manifest" / "build" / "json-schemas" / "teams"
BOT_COMMANDS = {"help", "remind me", "reminders", "cancel", "timezone", "report", "stop", "start"}


def schema_for(manifest: dict) -> dict:
    version = manifest["manifestVersion"]
    path = SCHEMAS / f"v{version}" / "MicrosoftTeams.schema.json"
    assert path.exists(), f"no schema for manifest version {version} in {SCHEMAS} (npm ci)"
    return json.loads(path.read_text("utf-8"))


def validator(manifest: dict) -> jsonschema.protocols.Validator:
    """The schema's own draft (04). Not check_schema(): one pattern uses \\p{L}, which Python's re
    lacks; it belongs to `extensions`, which this manifest does not use."""
    schema = schema_for(manifest)
    return jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())


def test_the_filled_manifest_is_valid_for_the_version_it_declares():
    manifest = app_package.filled_manifest(APP_ID)

    errors = sorted(validator(manifest).iter_errors(manifest), key=lambda e: list(e.path))
    assert errors == [], "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    assert manifest["$schema"].endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json")


def test_the_schema_check_catches_a_broken_manifest():
    manifest = app_package.filled_manifest(APP_ID)
    manifest["bots"][0]["scopes"].append("everywhere")
    del manifest["developer"]["privacyUrl"]

    assert len(list(validator(manifest).iter_errors(manifest))) == 2


def test_the_bot_is_everywhere_with_its_commands_and_read_receipts():
    manifest = app_package.filled_manifest(APP_ID)
    [bot] = manifest["bots"]

    assert bot["botId"] == manifest["id"] == manifest["webApplicationInfo"]["id"] == APP_ID
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    for commands in bot["commandLists"]:
        assert {c["title"] for c in commands["commands"]} == BOT_COMMANDS
    assert {scope for commands in bot["commandLists"] for scope in commands["scopes"]} == set(bot["scopes"])
    assert {"name": "ChatMessageReadReceipt.Read.Chat", "type": "Application"} in manifest["authorization"][
        "permissions"
    ]["resourceSpecific"]


def test_the_commands_are_ones_the_bot_answers():
    from proactive_bot.bot import HELP

    for command in BOT_COMMANDS:
        assert f"**{command}" in HELP, command


def test_make_package_zips_manifest_and_icons_at_the_root(tmp_path):
    out = app_package.build(APP_ID.upper(), tmp_path / "appPackage.zip")

    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["manifest.json", "color.png", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        assert archive.read("color.png") == (PACKAGE_SOURCE / "color.png").read_bytes()
    assert manifest["bots"][0]["botId"] == APP_ID  # lower-cased, as Azure writes client ids
    assert "${{" not in json.dumps(manifest)
    assert app_package.build(APP_ID, tmp_path / "again.zip").read_bytes() == out.read_bytes()  # reproducible


@pytest.mark.parametrize("bot_id", ["", "not-a-guid", "${{BOT_APP_ID}}"])
def test_no_package_without_a_bot_id(tmp_path, bot_id, capsys):
    with pytest.raises(PackageError, match="must be a GUID"):
        app_package.build(bot_id, tmp_path / "p.zip")
    assert app_package.main(["--bot-id", bot_id, "--out", str(tmp_path / "p.zip")]) == 2
    assert "BOT_APP_ID" in capsys.readouterr().err
    assert not (tmp_path / "p.zip").exists()


def read_png(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Size and RGBA pixels of an 8-bit RGBA, filter-0 PNG (what app_package.png writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, color_type = struct.unpack(">IIBB", data[16:26])
    assert (depth, color_type) == (8, 6)
    idat = b"".join(
        data[m.start() + 4 : m.start() + 4 + struct.unpack(">I", data[m.start() - 4 : m.start()])[0]]
        for m in re.finditer(b"IDAT", data)
    )
    raw = zlib.decompress(idat)
    stride = width * 4 + 1
    assert all(raw[row * stride] == 0 for row in range(height))
    pixels = [tuple(raw[r * stride + 1 + 4 * x : r * stride + 5 + 4 * x]) for r in range(height) for x in range(width)]
    return width, height, pixels


def test_the_icons_are_the_sizes_teams_wants_and_the_outline_is_white_on_transparent():
    color_w, color_h, color = read_png((PACKAGE_SOURCE / "color.png").read_bytes())
    outline_w, outline_h, outline = read_png((PACKAGE_SOURCE / "outline.png").read_bytes())

    assert (color_w, color_h, outline_w, outline_h) == (192, 192, 32, 32)
    assert all(alpha == 255 for *_, alpha in color)
    assert set(outline) == {(255, 255, 255, 255), (0, 0, 0, 0)}


def test_the_committed_icons_are_what_the_generator_draws(tmp_path):
    app_package.draw_icons(tmp_path)

    for name in ("color.png", "outline.png"):
        assert (tmp_path / name).read_bytes() == (PACKAGE_SOURCE / name).read_bytes(), name
