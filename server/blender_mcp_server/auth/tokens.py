"""HS256 JWTs: access, refresh and long-lived API tokens (provider.py is the verifier fastmcp runs).

Refresh tokens carry their own audience *and* `typ`, so the stock idea of
"any token signed with our key is a bearer token" cannot let one through
(docs/architecture.md, "Pitfalls"). API tokens are access tokens with a stored `jti`, so
they can be revoked.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from ..storage.protocols import Accounts
from ..storage.records import StoreUnavailable, User

ISSUER = "blender-mcp-bus"
ACCESS_AUDIENCE = "blender-mcp"
REFRESH_AUDIENCE = "blender-mcp-refresh"
ALGORITHM = "HS256"
_BEARER_TYPES = ("access", "api")
_CACHE_SECONDS = 2.0  # how long a user/API-token lookup is trusted; revocation takes effect within this
_STALE_SECONDS = 300.0  # how long past that a lookup still stands in while the store is out of reach


class TokenError(Exception):
    """A token that must not be accepted; the message is safe to show the caller."""


def load_or_create_secret(data_dir: Path) -> str:
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret


@dataclass(frozen=True)
class Issued:
    token: str
    jti: str
    expires: float


class TokenService:
    def __init__(self, store: Accounts, secret: str, access_ttl: int, refresh_ttl: int, api_ttl: int):
        self._store = store
        self._secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.api_ttl = api_ttl
        self._user_cache: dict[int, tuple[float, Any]] = {}
        self._api_cache: dict[str, tuple[float, Any]] = {}
        # Every /mcp request carries its token; decoding the same JWT again is a measurable share of
        # the server's time (profiled), so a verified token's claims are kept until it expires.
        self._verified: dict[str, dict[str, Any]] = {}

    async def _mint(self, user: User, typ: str, audience: str, ttl: int) -> Issued:
        epoch = await self._store.token_epoch(user.id) or 0
        now = int(time.time())
        jti = uuid.uuid4().hex
        # `ep`: the user's token epoch, which a password change moves on, ending every token minted before.
        claims = {"iss": ISSUER, "aud": audience, "sub": str(user.id), "username": user.username,
                  "typ": typ, "iat": now, "exp": now + ttl, "jti": jti, "ep": epoch}
        return Issued(jwt.encode(claims, self._secret, algorithm=ALGORITHM), jti, float(now + ttl))

    async def issue_pair(self, user: User) -> dict[str, Any]:
        """The `/auth/login` and `/auth/refresh` answer (spec: write-your-own-llm-client, stage 1)."""
        access = await self._mint(user, "access", ACCESS_AUDIENCE, self.access_ttl)
        refresh = await self._mint(user, "refresh", REFRESH_AUDIENCE, self.refresh_ttl)
        await self._store.add_refresh(refresh.jti, user.id, refresh.expires)
        return {"access_token": access.token, "refresh_token": refresh.token, "token_type": "bearer",
                "expires_in": self.access_ttl, "user": {"id": user.id, "username": user.username}}

    async def issue_api_token(self, user: User, name: str, ttl: int | None = None,
                        minted_with: dict[str, Any] | None = None) -> Issued:
        """A long-lived token. `minted_with`: the claims of the bearer token that asked for it. A token
        minted with an API token never outlives it and is revoked with it, so a leaked token cannot be
        laundered into a longer-lived one that survives its revocation."""
        ttl = ttl or self.api_ttl
        parent = None
        if minted_with is not None and minted_with.get("typ") == "api":
            parent = str(minted_with["jti"])
            ttl = max(1, min(ttl, int(minted_with["exp"] - time.time())))
        issued = await self._mint(user, "api", ACCESS_AUDIENCE, ttl)
        await self._store.add_api_token(issued.jti, user.id, name, issued.expires, parent_jti=parent)
        return issued

    def _decode(self, token: str, audience: str) -> dict[str, Any]:
        try:
            return jwt.decode(token, self._secret, algorithms=[ALGORITHM], audience=audience, issuer=ISSUER,
                              options={"require": ["exp", "sub", "typ", "jti", "aud", "iss"]})
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.InvalidTokenError:
            raise TokenError("invalid token") from None

    async def verify_bearer(self, token: str) -> dict[str, Any]:
        claims = self._verified.get(token)
        if claims is None or claims["exp"] <= time.time():
            claims = self._decode(token, ACCESS_AUDIENCE)
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[token] = claims
        if claims.get("typ") not in _BEARER_TYPES:
            raise TokenError("not an access token")
        epoch = await self._cached(self._user_cache, int(claims["sub"]), self._store.token_epoch)
        if epoch is None:
            raise TokenError("user no longer exists")
        if claims.get("ep", 0) != epoch:
            raise TokenError("token ended by a password change; log in again")
        if claims["typ"] == "api" and not await self._cached(self._api_cache, claims["jti"], self._store.api_token_live):
            raise TokenError("API token revoked")
        return claims

    async def use_refresh(self, token: str) -> User:
        claims = self._decode(token, REFRESH_AUDIENCE)
        if claims.get("typ") != "refresh":
            raise TokenError("not a refresh token")
        user_id = await self._store.use_refresh(claims["jti"])
        user = await self._store.get_user(user_id) if user_id is not None else None
        if user is None or claims.get("ep", 0) != await self._store.token_epoch(user.id):
            raise TokenError("refresh token revoked or unknown")
        return user

    async def revoke_refresh(self, token: str) -> bool:
        try:
            claims = self._decode(token, REFRESH_AUDIENCE)
        except TokenError:
            return False
        return await self._store.revoke_refresh(claims["jti"])

    def forget(self) -> None:
        """Drop cached lookups, e.g. after this process revoked a token or deleted a user."""
        self._user_cache.clear()
        self._api_cache.clear()
        self._verified.clear()

    @staticmethod
    async def _cached(cache: dict[Any, tuple[float, Any]], key: Any, lookup: Callable[[Any], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        hit = cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            value = await lookup(key)
        except StoreUnavailable:
            # A signed, unexpired token of a user (API token) this server checked before stays good while the store is out of reach
            # (its revocation takes effect once the store is back): the calls it carries then answer
            # backend_unavailable themselves, where they touch the store, instead of the whole session failing.
            # One never checked here is refused.
            if hit is None or now - hit[0] > _STALE_SECONDS:
                raise
            return hit[1]
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = (now + _CACHE_SECONDS, value)
        return value
