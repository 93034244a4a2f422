"""The embedded bus client, bpy-free: usable inside Blender, in tests, and by Style B LLM-side code."""

from .auth import AuthError, TokenKeeper
from .bus_client import BusClient, ClientConfig, ConnectionState
from .bus_session import BusSession, JobWaiter
from .pump import MessagePump, PumpItem
from .records import bus_record_of

__all__ = ["AuthError", "BusClient", "BusSession", "JobWaiter", "ClientConfig", "ConnectionState", "MessagePump", "PumpItem", "TokenKeeper",
           "bus_record_of"]
