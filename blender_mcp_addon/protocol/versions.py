"""The versions the add-on and the server tell each other when a Blender registers.

The add-on sends `ClientVersions` with `blender_register_client(versions=...)`; the server answers
with `server_versions()` beside `"status": "registered"`, or refuses a client whose protocol it cannot
serve with `"error": "incompatible_version"` before anything else can go wrong. The protocol version
counts incompatible changes of the wire (records, payloads, tool arguments); the add-on's and the
server's release versions are for people reading the panel, the worker log and the client listing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# The product's release; blender_manifest.toml, bl_info, pyproject.toml and the server say the same
# (tests/test_versions.py holds them to it).
RELEASE = "0.1.0"
PROTOCOL_VERSION = 1
# The protocol versions this code serves (as a server) and accepts from a server (as the add-on).
SUPPORTED_PROTOCOLS = (1, 1)


class ClientVersions(BaseModel):
    """What a client runs; every field optional so a Style B client may send only what it knows."""

    model_config = ConfigDict(extra="ignore")

    addon: str | None = Field(default=None, max_length=40)
    blender: str | None = Field(default=None, max_length=60)
    python: str | None = Field(default=None, max_length=40)
    protocol: int | None = Field(default=None, ge=0, le=10_000)


def supported(protocol: int | None) -> bool:
    low, high = SUPPORTED_PROTOCOLS
    return protocol is None or low <= protocol <= high


def server_versions(server_release: str) -> dict[str, Any]:
    return {"version": server_release, "protocol": PROTOCOL_VERSION, "protocols": list(SUPPORTED_PROTOCOLS)}


def parse_client_versions(raw: Any) -> ClientVersions:
    """`raw` as sent; raises ValueError with a readable reason."""
    if raw is None:
        return ClientVersions()
    if not isinstance(raw, dict):
        raise ValueError("versions must be an object such as {\"addon\": \"0.1.0\", \"protocol\": 1}")
    try:
        return ClientVersions.model_validate(raw)
    except ValidationError as exc:
        raise ValueError("versions: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                  for e in exc.errors())) from None


def incompatibility(client_protocol: int | None, server_release: str) -> str | None:
    """The message for a client the server cannot serve, or None."""
    if supported(client_protocol):
        return None
    low, high = SUPPORTED_PROTOCOLS
    newer = client_protocol is not None and client_protocol > high
    advice = ("update the server" if newer else "update the BlenderMCP add-on")
    return (f"this add-on speaks bus protocol {client_protocol}; server {server_release} serves protocols "
            f"{low}-{high}: {advice}")


def server_incompatibility(answer: dict[str, Any]) -> str | None:
    """The add-on's side: why it cannot use the server that answered `answer`, or None."""
    server = answer.get("server")
    if not isinstance(server, dict):
        return None  # a server older than this exchange: nothing to compare, it has served protocol 1
    protocols = server.get("protocols")
    if isinstance(protocols, list) and len(protocols) == 2 and all(isinstance(p, int) for p in protocols):
        if not protocols[0] <= PROTOCOL_VERSION <= protocols[1]:
            return (f"server {server.get('version', '?')} serves bus protocols {protocols[0]}-{protocols[1]}, "
                    f"this add-on speaks {PROTOCOL_VERSION}: update the "
                    f"{'add-on' if PROTOCOL_VERSION < protocols[0] else 'server'}")
    return None
