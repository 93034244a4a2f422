"""The one way a tool learns who called it: the verified JWT claims and the caller's MCP session."""

from __future__ import annotations

from typing import Any

from fastmcp import Context
from fastmcp.server.auth import AccessToken
from fastmcp.server.dependencies import get_access_token

from ..bus.caller import Caller


class NotAuthenticated(Exception):
    pass


def caller_of(ctx: Context) -> Caller:
    try:
        session, session_id = ctx.session, ctx.session_id
    except RuntimeError:
        session, session_id = None, None
    return caller_from_token(get_access_token(), session, session_id)


def caller_from_token(token: AccessToken | None, session: Any, session_id: str | None) -> Caller:
    """The caller a verified token names (what BusTokenVerifier put in its claims), on that session."""
    if token is None or "sub" not in token.claims:
        # /mcp is behind the verifier, so this only happens on a misconfigured server.
        raise NotAuthenticated("no authenticated user on this request")
    return Caller(user_id=str(token.claims["sub"]), username=str(token.claims.get("username", "")),
                  session=session, session_id=session_id)
