"""The dashboard's files: plain HTML/CSS/JS in pipeline/web/static (no build step); Chart.js
is vendored from npm with its licence (deploy/vendor-chartjs.sh). Everything comes from the
worker's own origin, so the Content-Security-Policy allows nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
PREFIX = "/ui/"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
          ".md": "text/plain", ".svg": "image/svg+xml", ".png": "image/png"}
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def static_files(root: Path = STATIC) -> dict[str, tuple[bytes, str]]:
    """Every file under `root`, read once at start-up. Only names in this table are served,
    so no part of a URL ever reaches the file system."""
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in _TYPES:
            files[path.relative_to(root).as_posix()] = (path.read_bytes(), _TYPES[path.suffix])
    files[""] = files["index.html"]
    return files



def static_response(files: Mapping[str, tuple[bytes, str]], name: str) -> web.Response:
    found = files.get(name)
    if found is None:
        return web.json_response({"error": "not found"}, status=404)
    body, content_type = found
    headers = {"Cache-Control": "no-cache"}
    if content_type == "text/html":
        headers["Content-Security-Policy"] = _CSP
    return web.Response(body=body, content_type=content_type, charset="utf-8"
                        if content_type.startswith("text/") else None, headers=headers)
