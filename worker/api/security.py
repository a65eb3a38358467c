"""What a request must look like before any route sees it: the defaults that keep a token-less API local.

Without `KOMAS_API_TOKEN` the API listens on loopback only (`auth.check_bind_allowed`); these rules close
what a web page could still do through the user's browser:

- **Host**: a request whose `Host` is not loopback (127.0.0.0/8, localhost, [::1], any port) gets 421,
  so a DNS-rebinding page (its own name resolving to 127.0.0.1) cannot read or write.
- **Origin**: a write (POST, PUT, PATCH, DELETE) whose `Origin` header is present and is not the API's own
  origin (`http://<Host>`) gets 403: a page elsewhere cannot post to it, whatever the content type.

And with or without a token:

- **Content-Type**: a write with a body must say `application/json` (or `<something>+json`); anything else
  gets 415, so an HTML form or a `text/plain` fetch (which browsers send cross-origin without asking) is
  never taken for a command.
"""

from __future__ import annotations

from starlette.datastructures import Headers

from worker.api.auth import is_loopback
from worker.api.limits import ASGIApp, Receive, Scope, Send, send_problem

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_name(host_header: str) -> str:
    """The name or address of a `Host` header, without its port (`[::1]:8000` -> `::1`)."""
    value = host_header.strip()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if "transfer-encoding" in headers:
        return True
    return length is not None and length.strip() not in ("", "0")


class RequestGuard:
    """Pure ASGI middleware applying the rules above (`token_configured`: whether KOMAS_API_TOKEN is set)."""

    def __init__(self, app: ASGIApp, token_configured: bool) -> None:
        self.app = app
        self.token_configured = token_configured

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope["method"], Headers(scope=scope))
        if refusal is not None:
            await send_problem(send, *refusal)
            return
        await self.app(scope, receive, send)

    def refusal(self, method: str, headers: Headers) -> tuple[int, str] | None:
        """The status and reason to refuse this request with, or None to let it through."""
        host = headers.get("host", "")
        if not self.token_configured and not is_loopback(host_name(host)):
            return 421, (
                f"Host {host!r} is not loopback: without KOMAS_API_TOKEN the API answers only requests "
                "addressed to 127.0.0.1, localhost or [::1]"
            )
        if method not in WRITE_METHODS:
            return None
        origin = headers.get("origin")
        if not self.token_configured and origin is not None and origin.lower() != f"http://{host}".lower():
            return 403, f"cross-origin write refused: Origin {origin!r} is not this API (http://{host})"
        if has_body(headers) and not is_json(headers.get("content-type", "")):
            return 415, "a write's body must be JSON: send `Content-Type: application/json`"
        return None
