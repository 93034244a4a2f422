"""The verifier fastmcp runs on every /mcp request: a bearer token the TokenService accepts, or 401."""

from __future__ import annotations

from fastmcp.server.auth import AccessToken, TokenVerifier

from .tokens import TokenError, TokenService


class BusTokenVerifier(TokenVerifier):
    """fastmcp's hook: every /mcp request passes through here, or gets 401."""

    def __init__(self, tokens: TokenService):
        super().__init__()
        self._tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = await self._tokens.verify_bearer(token)
        except TokenError:
            return None
        return AccessToken(token=token, client_id=claims["username"], scopes=[], expires_at=int(claims["exp"]),
                           claims=claims)
