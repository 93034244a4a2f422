"""Bound the MCP sessions one account may hold open, so one user cannot fill the server's session table.

The SDK's session manager has one global bound (`max_sessions`): once it is reached every new session,
whoever asks, gets 503. Each session costs ~70 KB, and one account opened 10,000 in 33 s. This ASGI
middleware on /mcp counts sessions per user (the token's `sub`, so all of a user's access and API tokens
share one count) and refuses a new one past `max_sessions_per_user` with 429, before the SDK admits it.

The count is the user's session ids that the SDK still holds open (`sdk_shims.sdk_open_session_ids`), so sessions that end any way the SDK
ends them (DELETE, idle expiry, a crash, shutdown) stop counting without this module hearing of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.types import INVALID_REQUEST, ErrorData, JSONRPCError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# A full pass over every user's ids now and then, so the ids of users who never come back are dropped.
_SWEEP_EVERY = 1024


def too_many_sessions(open_now: int, limit: int, idle_timeout: float) -> Response:
    """429 with a JSON-RPC error body shaped like the SDK's own refusals (it has no request id to answer)."""
    message = (f"Too many open MCP sessions for this user: {open_now} of {limit} (max_sessions_per_user). "
               "Close sessions you no longer use (HTTP DELETE /mcp with their Mcp-Session-Id header) or reuse "
               f"one; a session with no request or stream open for {idle_timeout:g} s expires by itself.")
    body = JSONRPCError(jsonrpc="2.0", id="server-error", error=ErrorData(
        code=INVALID_REQUEST, message=message, data={"error": "too_many_sessions", "limit": limit, "open": open_now}))
    return Response(body.model_dump_json(by_alias=True, exclude_none=True), status_code=429,
                    media_type="application/json")


def _user_key(scope: Scope) -> str | None:
    user = scope.get("user")
    if not isinstance(user, AuthenticatedUser):
        return None  # no valid token: the route itself answers 401
    claims = getattr(user.access_token, "claims", None) or {}
    sub = claims.get("sub")
    return str(sub) if sub is not None else user.access_token.client_id


def _session_header(headers: Any) -> str | None:
    return next((v.decode("latin-1") for k, v in headers if k.lower() == b"mcp-session-id"), None)


class SessionLimit:
    """ASGI middleware: at most `limit` open sessions per user on `path`."""

    def __init__(self, app: ASGIApp, limit: int, open_ids: Callable[[], Container[str] | None],
                 idle_timeout: float, path: str = "/mcp"):
        self.app = app
        self.limit = limit
        self.open_ids = open_ids
        self.idle_timeout = idle_timeout
        self.path = path.rstrip("/")
        self._sessions: dict[str, set[str]] = {}  # user -> ids of sessions it opened
        self._owners: dict[str, str] = {}  # session id -> user
        # Opening requests admitted but not yet answered: many sent at once must not all slip past the bound.
        self._opening: dict[str, int] = {}
        self._admitted = 0
        self._warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        session_id = _session_header(scope["headers"])
        if method == "DELETE" and session_id:
            await self._serve_delete(session_id, scope, receive, send)
            return
        user = _user_key(scope) if method == "POST" and not session_id else None
        if user is None:
            await self.app(scope, receive, send)
            return
        live = self.open_ids()
        if live is None:
            if not self._warned:
                self._warned = True
                log.warning("the MCP SDK's session table is out of reach: max_sessions_per_user is not enforced")
            await self.app(scope, receive, send)
            return
        open_now = self._count(user, live)
        if open_now + self._opening.get(user, 0) >= self.limit:
            await too_many_sessions(open_now, self.limit, self.idle_timeout)(scope, receive, send)
            return
        await self._serve_opening(user, scope, receive, send)

    async def _serve_opening(self, user: str, scope: Scope, receive: Receive, send: Send) -> None:
        self._opening[user] = self._opening.get(user, 0) + 1
        opening = True

        def done_opening() -> None:
            nonlocal opening
            if opening:
                opening = False
                left = self._opening.pop(user, 1) - 1
                if left:
                    self._opening[user] = left

        async def watch_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                # From its answer on, a session counts as open (the SDK may still be winding the request down).
                new_id = _session_header(message.get("headers", [])) if message["status"] < 400 else None
                if new_id:
                    self._sessions.setdefault(user, set()).add(new_id)
                    self._owners[new_id] = user
                done_opening()
            await send(message)

        try:
            await self.app(scope, receive, watch_send)
        finally:
            done_opening()
        self._admitted += 1
        if self._admitted % _SWEEP_EVERY == 0:
            self._sweep()

    async def _serve_delete(self, session_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        # The SDK forgets a deleted session only after its answer is sent; a client that opens its next
        # session the moment it reads that answer must find the place already free.
        async def watch_send(message: Message) -> None:
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                self._forget(session_id)
            await send(message)

        await self.app(scope, receive, watch_send)

    def _count(self, user: str, live: Container[str]) -> int:
        ids = self._sessions.get(user)
        if not ids:
            return 0
        for gone in [i for i in ids if i not in live]:
            ids.discard(gone)
            self._owners.pop(gone, None)
        if not ids:
            del self._sessions[user]
        return len(ids)

    def _forget(self, session_id: str) -> None:
        user = self._owners.pop(session_id, None)
        if user is not None and (ids := self._sessions.get(user)) is not None:
            ids.discard(session_id)
            if not ids:
                del self._sessions[user]

    def _sweep(self) -> None:
        live = self.open_ids()
        if live is not None:
            for user in list(self._sessions):
                self._count(user, live)
