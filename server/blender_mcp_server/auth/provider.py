"""The verifier fastmcp runs on every /mcp request: a bearer token the TokenService accepts, or 401; 503 while
the store that token checks read is unavailable."""

from __future__ import annotations

from typing import Any

from fastmcp.server.auth import AccessToken, TokenVerifier
from starlette.authentication import AuthenticationError
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from ..storage.records import StoreUnavailable
from .tokens import TokenError, TokenService

RETRY_AFTER = 2  # seconds: about how long the store's pool takes to notice the database is back


class BackendUnavailable(AuthenticationError):
    """Raised out of the verifier so that the authentication middleware answers it, not a 500 or a 401."""


def backend_unavailable_response(message: str) -> JSONResponse:
    return JSONResponse({"error": "backend_unavailable", "message": message, "retry_after": RETRY_AFTER},
                        status_code=503, headers={"Retry-After": str(RETRY_AFTER)})


def _on_auth_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    if isinstance(exc, BackendUnavailable):
        return backend_unavailable_response(str(exc))
    return AuthenticationMiddleware.default_on_error(conn, exc)


class BusTokenVerifier(TokenVerifier):
    """fastmcp's hook: every /mcp request passes through here, or gets 401.

    A token that cannot be checked because the store is away is neither accepted (fail closed) nor called
    invalid: a 401 would send a client to log in again, which fails the same way, so it gets 503 with
    Retry-After and keeps its token."""

    def __init__(self, tokens: TokenService):
        super().__init__()
        self._tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = await self._tokens.verify_bearer(token)
        except TokenError:
            return None
        except StoreUnavailable as exc:
            raise BackendUnavailable(str(exc)) from None
        return AccessToken(token=token, client_id=claims["username"], scopes=[], expires_at=int(claims["exp"]),
                           claims=claims)

    def get_middleware(self) -> list[Any]:
        # fastmcp's own list, with an on_error that can answer 503: the stock one answers any
        # AuthenticationError with a plain-text 400.
        middleware = super().get_middleware()
        return [Middleware(AuthenticationMiddleware, backend=m.kwargs["backend"], on_error=_on_auth_error)
                if m.cls is AuthenticationMiddleware else m for m in middleware]
