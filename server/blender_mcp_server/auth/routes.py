"""Plain HTTP routes beside /mcp: login, refresh, logout, API tokens, health.

These are the only unauthenticated entry points (besides /health), and they
hand out the tokens that /mcp demands.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..storage.passwords import verify_password
from ..storage.protocols import Accounts
from ..storage.records import StoreUnavailable
from .provider import backend_unavailable_response
from .throttle import LoginThrottle
from .tokens import TokenError, TokenService


def _err(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _encodable(*texts: str) -> bool:
    """JSON may carry lone surrogates ("\\ud800"), which no database or hash takes."""
    try:
        for text in texts:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


Route = Callable[["AuthRoutes", Request], Awaitable[JSONResponse]]


def _store_may_be_away(route: Route) -> Route:
    """A route whose store is unreachable answers 503 backend_unavailable at once (the store fails fast), so a
    client can tell "try again shortly" from a wrong password or a bad token."""

    @functools.wraps(route)
    async def answer(self: AuthRoutes, request: Request) -> JSONResponse:
        try:
            return await route(self, request)
        except StoreUnavailable as exc:
            return backend_unavailable_response(str(exc))

    return answer


class AuthRoutes:
    def __init__(self, store: Accounts, tokens: TokenService, *, throttle: LoginThrottle,
                 hashes_at_once: int):
        self.store = store
        self.tokens = tokens
        self.throttle = throttle
        # argon2 takes ~100 ms of CPU a check: off the event loop, and only this many at once, so a flood
        # of logins queues behind itself instead of stalling every bus call and /health.
        self._hashing = asyncio.Semaphore(hashes_at_once)

    @_store_may_be_away
    async def login(self, request: Request) -> JSONResponse:
        body = await _json_body(request)
        if (body is None or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str)
                or not _encodable(body["username"], body["password"])):
            return _err(400, "invalid_request", 'send JSON {"username": "...", "password": "..."} (UTF-8 text)')
        username, password = body["username"], body["password"]
        address = request.client.host if request.client else "?"
        if (retry_after := await self.throttle.refused(address, username)) is not None:
            return _err(429, "too_many_attempts", "too many failed logins from this address; wait and try again",
                        retry_after=retry_after)
        await asyncio.sleep(await self.throttle.delay(username))
        record = await self.store.login_record(username)
        async with self._hashing:
            ok = await asyncio.to_thread(verify_password, password, record[1] if record else None)
        if not ok or record is None:
            await self.throttle.failed(address, username)
            return _err(401, "invalid_credentials", "wrong username or password")
        await self.throttle.succeeded(address, username)
        return JSONResponse(await self.tokens.issue_pair(record[0]))

    @_store_may_be_away
    async def refresh(self, request: Request) -> JSONResponse:
        body = await _json_body(request)
        if body is None or not isinstance(body.get("refresh_token"), str):
            return _err(400, "invalid_request", 'send JSON {"refresh_token": "..."}')
        try:
            user = await self.tokens.use_refresh(body["refresh_token"])
        except TokenError as exc:
            return _err(401, "invalid_token", str(exc))
        return JSONResponse(await self.tokens.issue_pair(user))

    @_store_may_be_away
    async def logout(self, request: Request) -> JSONResponse:
        body = await _json_body(request)
        if body is None or not isinstance(body.get("refresh_token"), str):
            return _err(400, "invalid_request", 'send JSON {"refresh_token": "..."}')
        return JSONResponse({"revoked": await self.tokens.revoke_refresh(body["refresh_token"])})

    async def _bearer(self, request: Request) -> dict[str, Any] | JSONResponse:
        """The verified claims of the request's bearer token, or the 401 to answer."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return _err(401, "unauthorized", "send Authorization: Bearer <access token>")
        try:
            return await self.tokens.verify_bearer(header[7:].strip())
        except TokenError as exc:
            return _err(401, "invalid_token", str(exc))

    @_store_may_be_away
    async def api_tokens(self, request: Request) -> JSONResponse:
        """GET: list your API tokens; POST {name, ttl_days?}: mint one (the panel's "copy config" button).

        A token minted with an API token expires no later than it and is revoked with it."""
        claims = await self._bearer(request)
        if isinstance(claims, JSONResponse):
            return claims
        user_id = int(claims["sub"])
        if request.method == "GET":
            return JSONResponse({"tokens": await self.store.list_api_tokens(user_id)})
        body = await _json_body(request) or {}
        name = body.get("name") or "api token"
        ttl_days = body.get("ttl_days")
        if not isinstance(name, str) or len(name) > 100 or (
                ttl_days is not None and (not isinstance(ttl_days, int | float) or not 0 < ttl_days <= 3650)):
            return _err(400, "invalid_request", "name: string up to 100 chars; ttl_days: 0 < days <= 3650")
        user = await self.store.get_user(user_id)
        if user is None:
            return _err(401, "invalid_token", "user no longer exists")
        issued = await self.tokens.issue_api_token(user, name, int(ttl_days * 86400) if ttl_days else None,
                                             minted_with=claims)
        return JSONResponse({"token": issued.token, "jti": issued.jti, "expires": issued.expires, "name": name})

    @_store_may_be_away
    async def revoke_api_token(self, request: Request) -> JSONResponse:
        claims = await self._bearer(request)
        if isinstance(claims, JSONResponse):
            return claims
        ok = await self.store.revoke_api_token(request.path_params["jti"], int(claims["sub"]))
        self.tokens.forget()
        return JSONResponse({"revoked": ok}, status_code=200 if ok else 404)
