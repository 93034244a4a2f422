"""Refuse request bodies whose JSON nests deeper than a bound, before anything parses them.

Python's `json` parser recurses per level and raises RecursionError at ~1,000 levels; neither the SDK
(which catches only JSONDecodeError) nor the /auth/* routes expect that, so such a body was a 500 with a
traceback in the log. This ASGI middleware reads the body first (the SDK buffers it whole anyway),
measures its nesting with C-speed passes, and answers too deep a body with a 400: a JSON-RPC error on
/mcp, the routes' own `{"error", "message"}` shape elsewhere. Shallower bodies go on untouched.
"""

from __future__ import annotations

import itertools
import re

from mcp.server.streamable_http_manager import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp.types import INVALID_REQUEST, ErrorData, JSONRPCError
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A JSON string, escapes included; brackets inside strings are text, not nesting.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth_over(body: bytes, limit: int) -> bool:
    """Whether the JSON text `body` nests more than `limit` arrays/objects deep (malformed text is measured
    as far as its brackets go; the parser that comes next refuses it anyway)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # too few brackets to nest that deep: most requests stop here
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


class JsonDepthGuard:
    """ASGI middleware over every route that reads a request body."""

    def __init__(self, app: ASGIApp, limit: int, mcp_path: str = "/mcp",
                 max_body: int = DEFAULT_MAX_REQUEST_BODY_SIZE):
        self.app = app
        self.limit = limit
        self.mcp_path = mcp_path.rstrip("/")
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        is_mcp = scope["path"].rstrip("/") == self.mcp_path
        if is_mcp and not getattr(scope.get("user"), "is_authenticated", False):
            await self.app(scope, receive, send)  # no valid token: 401 from the route, body unread
            return
        if _declared_length(scope) > self.max_body:
            await self._too_large(is_mcp, scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left (or its body stalled past body_timeout): no one to answer
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(is_mcp, scope, _replay(chunks, more_body=True, receive=receive), send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_depth_over(body, self.limit):
            await self._refuse(is_mcp)(scope, receive, send)
            return
        await self.app(scope, _replay([body], more_body=False, receive=receive), send)

    async def _too_large(self, is_mcp: bool, scope: Scope, receive: Receive, send: Send) -> None:
        if is_mcp:
            await self.app(scope, receive, send)  # the SDK's own body bound answers it, in its own words
            return
        # The routes beside /mcp take a few hundred bytes; nothing of this size is parsed there.
        await JSONResponse({"error": "request_too_large", "message": f"request bodies here are at most "
                            f"{self.max_body} bytes", "limit": self.max_body}, status_code=413)(scope, receive, send)

    def _refuse(self, is_mcp: bool) -> Response:
        message = (f"request JSON nests deeper than {self.limit} levels (max_json_depth); "
                   "send flatter data")
        if not is_mcp:
            return JSONResponse({"error": "invalid_request", "message": message, "limit": self.limit},
                                status_code=400)
        body = JSONRPCError(jsonrpc="2.0", id="server-error", error=ErrorData(
            code=INVALID_REQUEST, message=f"Invalid request: {message}", data={"limit": self.limit}))
        return Response(body.model_dump_json(by_alias=True, exclude_none=True), status_code=400,
                        media_type="application/json")


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _replay(chunks: list[bytes], *, more_body: bool, receive: Receive) -> Receive:
    """A receive that hands over the body read so far as one message, then what the client sends next."""
    return replay({"type": "http.request", "body": b"".join(chunks), "more_body": more_body}, receive)


def replay(message: Message, receive: Receive) -> Receive:
    """A receive that hands over `message` (already read from `receive`) again, then what comes next."""
    pending = [message]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
