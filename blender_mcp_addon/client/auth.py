"""Tokens for the bus client: log in, refresh before expiry, hand the current token to every request.

The transport reads the token through `BearerAuth` on every HTTP request, so
a refreshed token is used by the next request without rebuilding the
transport (docs/architecture.md: fixed `headers=` break reconnects once the
token they carry expires).
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx

REFRESH_MARGIN = 0.2  # refresh when 20 % of the access token's lifetime is left


class AuthError(Exception):
    """Credentials were refused (or none are left); retrying the same ones will not help."""


def server_base(url: str) -> str:
    """`http://host:8000`, `http://host:8000/`, `http://host:8000/mcp` all name the same server."""
    url = url.strip().rstrip("/")
    return url[: -len("/mcp")] if url.endswith("/mcp") else url


class TokenKeeper:
    """Holds one identity's tokens. Thread-safe: the UI reads it, the client thread refreshes it.

    Give it a password (kept in memory only, for the worker's re-login), a
    refresh token (the panel's "remember me"), or a long-lived API token.
    """

    def __init__(self, server_url: str, *, username: str | None = None, password: str | None = None,
                 refresh_token: str | None = None, api_token: str | None = None, timeout: float = 15.0):
        self.base = server_base(server_url)
        self.username = username
        self._password = password
        self._refresh_token = refresh_token
        self._api_token = api_token
        self._access: str | None = api_token
        self._expires_at = float("inf") if api_token else 0.0
        self._lifetime = 0.0
        self._lock = threading.Lock()
        self._timeout = timeout

    @property
    def access_token(self) -> str | None:
        with self._lock:
            return self._access

    @property
    def refresh_token(self) -> str | None:
        with self._lock:
            return self._refresh_token

    @property
    def api_token_mode(self) -> bool:
        return bool(self._api_token)

    def expire(self) -> None:
        """Treat the current access token as expired, so the next `ensure()` gets a new one."""
        with self._lock:
            self._expires_at = 0.0

    @property
    def has_credentials(self) -> bool:
        return bool(self._api_token or self._password or self._refresh_token)

    def seconds_until_refresh(self) -> float:
        with self._lock:
            if self._api_token:
                return float("inf")
            return max(0.0, self._expires_at - self._lifetime * REFRESH_MARGIN - time.time())

    def _take(self, answer: dict[str, Any]) -> None:
        with self._lock:
            self._access = answer["access_token"]
            self._refresh_token = answer.get("refresh_token", self._refresh_token)
            self._lifetime = float(answer.get("expires_in", 3600))
            self._expires_at = time.time() + self._lifetime
            user = answer.get("user") or {}
            self.username = user.get("username", self.username)

    async def ensure(self) -> str:
        """A fresh access token: refresh, else log in with the password, else fail with AuthError."""
        if self._api_token:
            return self._api_token
        if self.access_token and self.seconds_until_refresh() > 0:
            return self.access_token  # type: ignore[return-value]
        async with httpx.AsyncClient(timeout=self._timeout) as http:
            if self._refresh_token:
                r = await http.post(f"{self.base}/auth/refresh", json={"refresh_token": self._refresh_token})
                if r.status_code == 200:
                    self._take(r.json())
                    return self.access_token  # type: ignore[return-value]
                if r.status_code >= 500:
                    r.raise_for_status()
                with self._lock:
                    self._refresh_token = None
            if self._password is not None and self.username:
                r = await http.post(f"{self.base}/auth/login",
                                    json={"username": self.username, "password": self._password})
                if r.status_code == 200:
                    self._take(r.json())
                    return self.access_token  # type: ignore[return-value]
                if r.status_code >= 500:
                    r.raise_for_status()
                raise AuthError(_reason(r))
        raise AuthError("session expired: log in again")

    def login_blocking(self, username: str, password: str, remember_password: bool = False) -> dict[str, Any]:
        """Log in from a UI operator (short, bounded); the password is only kept if asked to."""
        r = httpx.post(f"{self.base}/auth/login", json={"username": username, "password": password},
                       timeout=self._timeout)
        if r.status_code != 200:
            raise AuthError(_reason(r))
        self.username = username
        if remember_password:
            self._password = password
        answer = r.json()
        self._take(answer)
        return answer

    def logout_blocking(self) -> None:
        """Revoke the refresh token on the server, then forget every token."""
        token = self.refresh_token
        if token:
            try:
                httpx.post(f"{self.base}/auth/logout", json={"refresh_token": token}, timeout=5)
            except httpx.HTTPError:
                pass
        with self._lock:
            self._access = self._refresh_token = self._password = None
            self._expires_at = 0.0

    def auth(self) -> BearerAuth:
        return BearerAuth(self)


def keeper_for_cli(server_url: str, *, username: str | None, password: str | None,
                   token: str | None) -> tuple[TokenKeeper | None, int, str]:
    """A ready keeper for a command-line program (worker, stdio bridge), or an exit code and why not.

    With an API token nothing is asked of the server yet; with a password the login happens now, so a
    wrong password or an unreachable server is a clear message and exit code, not a traceback later.
    """
    keeper = TokenKeeper(server_url, username=username, password=password, api_token=token)
    if token:
        return keeper, 0, ""
    try:
        keeper.login_blocking(username or "", password or "", remember_password=True)
    except AuthError as exc:
        return None, 3, f"login refused: {exc}"
    except Exception as exc:
        return None, 4, f"cannot reach {keeper.base}: {exc}"
    return keeper, 0, ""


def _reason(r: httpx.Response) -> str:
    try:
        body = r.json()
        return str(body.get("message") or body.get("error") or r.status_code)
    except ValueError:
        return f"HTTP {r.status_code}"


class BearerAuth(httpx.Auth):
    """Puts the keeper's current token on each request; async clients also refresh it first when due."""

    def __init__(self, keeper: TokenKeeper):
        self._keeper = keeper

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._keeper.access_token
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._keeper.seconds_until_refresh() <= 0 and self._keeper.has_credentials:
            await self._keeper.ensure()
        token = self._keeper.access_token
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and self._keeper.has_credentials and not self._keeper.api_token_mode:
            self._keeper.expire()  # the server refused the token (revoked, clock skew): log in again once
            await self._keeper.ensure()
            request.headers["Authorization"] = f"Bearer {self._keeper.access_token}"
            yield request
