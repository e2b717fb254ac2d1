"""Who may ask: the Host allow-list (DNS rebinding), optional credentials (a bearer token
and/or a basic-auth pair), and safe headers on every answer."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pipeline.settings import Settings
from pipeline.web.static import PREFIX

OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # probes need no credentials
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY"}


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


