"""The one way a tool learns who called it: the verified JWT claims and the caller's MCP session."""

from __future__ import annotations

from fastmcp import Context
from fastmcp.server.dependencies import get_access_token

from ..bus.caller import Caller


class NotAuthenticated(Exception):
    pass


def caller_of(ctx: Context) -> Caller:
    token = get_access_token()
    if token is None or "sub" not in token.claims:
        # /mcp is behind the verifier, so this only happens on a misconfigured server.
        raise NotAuthenticated("no authenticated user on this request")
    try:
        session, session_id = ctx.session, ctx.session_id
    except RuntimeError:
        session, session_id = None, None
    return Caller(user_id=str(token.claims["sub"]), username=str(token.claims.get("username", "")),
                  session=session, session_id=session_id)
