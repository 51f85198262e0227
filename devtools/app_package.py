"""The Teams app package: appPackage/manifest.json with the bot's id filled in, and its icons, zipped.

    make package                      # BOT_APP_ID from the environment (azd env get-value BOT_APP_ID)
    python -m devtools.app_package --bot-id <guid> --out build/appPackage.zip
    python -m devtools.app_package --icons   # redraw appPackage/color.png and outline.png

The manifest names the bot's id as `${{BOT_APP_ID}}` (Teams Toolkit's placeholder form); with a
managed identity bot that id is the identity's client id (infra/ outputs it as BOT_APP_ID). The
zip holds manifest.json, color.png and outline.png at its root, as Teams wants, with fixed
timestamps so the same inputs make the same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
import zipfile
import zlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_SOURCE = REPO_ROOT / "appPackage"
PLACEHOLDER = "${{BOT_APP_ID}}"
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
FILES = ("manifest.json", "color.png", "outline.png")
ZIP_TIME = (2020, 1, 1, 0, 0, 0)
COLOR_SIZE, OUTLINE_SIZE = 192, 32  # what Teams requires
ACCENT = (0x4F, 0x6B, 0xED)


class PackageError(ValueError):
    """The package cannot be made; the message says what to set."""


def filled_manifest(bot_id: str, source: Path = PACKAGE_SOURCE) -> dict:
    if not GUID.match(bot_id or ""):
        raise PackageError(f"the bot id must be a GUID (BOT_APP_ID, the identity's client id), not {bot_id!r}")
    text = (source / "manifest.json").read_text("utf-8")
    # Replaced in the JSON text: the id sits in several places (id, botId, webApplicationInfo).
    manifest = json.loads(text.replace(PLACEHOLDER, bot_id.lower()))
    left = [m for m in re.findall(r"\$\{\{(\w+)\}\}", json.dumps(manifest))]
    if left:
        raise PackageError(f"appPackage/manifest.json has placeholders nothing fills: {', '.join(sorted(set(left)))}")
    return manifest


def build(bot_id: str, out: Path, source: Path = PACKAGE_SOURCE) -> Path:
    manifest = filled_manifest(bot_id, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in FILES:
            data = (
                (json.dumps(manifest, indent=2) + "\n").encode()
                if name == "manifest.json"
                else (source / name).read_bytes()
            )
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return out


# --- Icons: drawn here (no image library needed), committed as PNGs ---

Pixel = tuple[int, int, int, int]


def color_icon(size: int = COLOR_SIZE) -> list[list[Pixel]]:
    """The accent colour, full bleed, with a white bell: a ring and a clapper."""
    return [[(255, 255, 255, 255) if _bell(x, y, size) else (*ACCENT, 255) for x in range(size)] for y in range(size)]


def outline_icon(size: int = OUTLINE_SIZE) -> list[list[Pixel]]:
    """The same bell in white on a transparent background (Teams' rule for outline icons)."""
    return [[(255, 255, 255, 255) if _bell(x, y, size) else (0, 0, 0, 0) for x in range(size)] for y in range(size)]


def _bell(x: int, y: int, size: int) -> bool:
    cx, cy = (x + 0.5) / size - 0.5, (y + 0.5) / size - 0.5
    r = (cx * cx + cy * cy) ** 0.5
    ring = 0.22 <= r <= 0.34 and cy <= 0.12  # an open ring: the bell's body
    rim = abs(cy - 0.14) <= 0.05 and abs(cx) <= 0.38  # its rim
    clapper = ((cx * cx + (cy - 0.27) ** 2) ** 0.5) <= 0.07
    return ring or rim or clapper


def png(pixels: list[list[Pixel]]) -> bytes:
    """An 8-bit RGBA PNG (filter 0 on every row), deterministic for the same pixels."""
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def draw_icons(folder: Path = PACKAGE_SOURCE) -> None:
    (folder / "color.png").write_bytes(png(color_icon()))
    (folder / "outline.png").write_bytes(png(outline_icon()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.app_package", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bot-id",
        default=os.environ.get("BOT_APP_ID") or os.environ.get("MicrosoftAppId", ""),
        help="the bot's app id (default: $BOT_APP_ID, else $MicrosoftAppId)",
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "appPackage.zip")
    parser.add_argument("--icons", action="store_true", help="redraw the icons in appPackage/ and stop")
    args = parser.parse_args(argv)
    if args.icons:
        draw_icons()
        return 0
    try:
        out = build(args.bot_id, args.out)
    except PackageError as error:
        print(f"no package: {error}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
