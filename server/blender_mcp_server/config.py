"""Server settings: embedded defaults, overridable by `BLENDER_MCP_*` environment variables or CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BLENDER_MCP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    public_url: str | None = Field(default=None, description="URL clients use, when behind a TLS proxy")

    jwt_secret: SecretStr | None = Field(default=None, description="else generated once into data_dir")
    access_ttl: int = 3600
    refresh_ttl: int = 30 * 24 * 3600
    api_token_ttl: int = 365 * 24 * 3600
    demo_user: bool = Field(default=True, description="create demo/demo when the store has no users")
    allow_insecure_demo: bool = Field(default=False, description="serve demo/demo on a non-loopback bind")

    # Bad input and abuse limits (issue: hardening); every one answers with a structured error.
    max_payload_bytes: int = 1024 * 1024
    max_clients_per_user: int = 200
    messages_per_minute: int = 60_000
    login_failures_per_user: int = 10
    login_failures_per_address: int = 100

    # Delivery: each target's outbox and liveness.
    outbox_max: int = 10_000
    offline_max_records: int = 1000
    offline_max_age: float = 3600.0
    send_timeout: float = 5.0
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    session_idle_timeout: float = 300.0

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def is_loopback_bind(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")
