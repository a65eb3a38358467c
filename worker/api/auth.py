"""Bearer-token auth: `KOMAS_API_TOKEN` guards every write (and reads with `KOMAS_API_TOKEN_READS`).

Without a token the API must listen on loopback only: `check_bind_allowed` refuses anything else,
so a forgotten variable can never expose an open write API on the network.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from worker.api.errors import ApiError
from worker.config import Config

_bearer = HTTPBearer(auto_error=False, description="KOMAS_API_TOKEN")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`; anything else (0.0.0.0, a name, a LAN address) is not."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_allowed(host: str, config: Config) -> None:
    """Raise `ValueError` when the API would listen beyond loopback without a token."""
    if config.api_token is None and not is_loopback(host):
        raise ValueError(
            f"refusing to listen on {host!r} without a token: set KOMAS_API_TOKEN "
            "(clients send `Authorization: Bearer <token>`), or listen on 127.0.0.1"
        )


def _config(request: Request) -> Config:
    config: Config = request.app.state.config
    return config


def _check(credentials: HTTPAuthorizationCredentials | None, config: Config) -> None:
    if config.api_token is None:
        return
    expected = config.api_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    if credentials is None or not hmac.compare_digest(given, expected):
        reason = "missing bearer token" if credentials is None else "wrong bearer token"
        raise ApiError(401, reason, headers={"WWW-Authenticate": 'Bearer realm="komas"'})


def require_write(request: Request, credentials: Credentials) -> None:
    """Dependency of every write."""
    _check(credentials, _config(request))


def require_read(request: Request, credentials: Credentials) -> None:
    """Dependency of every read: checks the token only when `api_token_reads` is set."""
    config = _config(request)
    if config.api_token_reads:
        _check(credentials, config)


WriteAuth = Depends(require_write)
ReadAuth = Depends(require_read)
