"""The dashboard's server side: static files, security headers and optional access control.

The page itself is plain HTML/CSS/JS in pipeline/static (no build step); Chart.js is vendored
from npm with its licence (deploy/vendor-chartjs.sh). Everything comes from the worker's own
origin, so the Content-Security-Policy allows nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from pipeline.settings import Settings

STATIC = Path(__file__).parent / "static"
PREFIX = "/ui/"
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # probes need no credentials
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
          ".md": "text/plain", ".svg": "image/svg+xml", ".png": "image/png"}
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY"}


def static_files(root: Path = STATIC) -> dict[str, tuple[bytes, str]]:
    """Every file under `root`, read once at start-up. Only names in this table are served,
    so no part of a URL ever reaches the file system."""
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in _TYPES:
            files[path.relative_to(root).as_posix()] = (path.read_bytes(), _TYPES[path.suffix])
    files[""] = files["index.html"]
    return files


class Access:
    """Optional access control: a bearer token and/or a basic-auth pair from the settings."""

    def __init__(self, settings: Settings) -> None:
        token, password = settings.web_token, settings.web_password
        self._token = token.get_secret_value().encode() if token else None
        self._basic = (f"{settings.web_user}:{password.get_secret_value()}".encode()
                       if password is not None else None)

    @property
    def enabled(self) -> bool:
        return self._token is not None or self._basic is not None

    def allows(self, authorization: str | None) -> bool:
        if not self.enabled:
            return True
        scheme, _, value = (authorization or "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self._token is not None:
            try:
                given = value.strip().encode()
            except UnicodeError:  # undecodable bytes in the header: not our token
                return False
            return hmac.compare_digest(given, self._token)
        if scheme == "basic" and self._basic is not None:
            try:
                given = base64.b64decode(value.strip(), validate=True)
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(given, self._basic)
        return False

    def header(self) -> dict[str, str]:
        """What one worker sends another (the live views gather across workers)."""
        if self._token is not None:
            return {"Authorization": "Bearer " + self._token.decode()}
        if self._basic is not None:
            return {"Authorization": "Basic " + base64.b64encode(self._basic).decode()}
        return {}

    def challenge(self) -> str:
        # Browsers prompt for basic auth; API clients read the bearer scheme.
        scheme = "Basic" if self._basic else "Bearer"
        return f'{scheme} realm="smtp-auth-insights"'


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """Host names the dashboard answers to: loopback names, the bind address and the
    configured ones. A page elsewhere that rebinds its own name to 127.0.0.1 (DNS
    rebinding) still sends its own name in Host, and is refused."""
    # The bind address too: it is what the other workers' canonical URLs name.
    names = {*LOOPBACK_NAMES, settings.web_host, *settings.web_allowed_host_names}
    return frozenset(name.lower().strip("[]") for name in names)


def host_name(host: str) -> str:
    """The name part of a Host header: without the port, IPv6 brackets removed."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(access: Access, hosts: frozenset[str]) -> Any:
    """Host allow-list, credentials (when configured), `/` → the dashboard, and safe
    headers on every answer."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if host_name(request.headers.get("Host", "")) not in hosts:
            return web.json_response({"error": "unknown Host; see SMTP_AUTH_WEB_ALLOWED_HOSTS"},
                                     status=421, headers=_HEADERS)
        if request.path not in OPEN_PATHS and not access.allows(
                request.headers.get("Authorization")):
            return web.json_response({"error": "authentication required"}, status=401,
                                     headers={"WWW-Authenticate": access.challenge(),
                                              **_HEADERS})
        if request.path == "/":
            raise web.HTTPFound(PREFIX)
        response = await handler(request)
        response.headers.update(_HEADERS)
        return response

    return guard


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
