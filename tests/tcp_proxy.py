"""A loopback TCP proxy whose connections a test can cut, to stand for a network that drops."""

from __future__ import annotations

import asyncio
import contextlib


class CuttableProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.cuts = 0
        self.connections = 0  # accepted so far, for tests of connection reuse
        self.downstream = bytearray()  # everything the server sent, for tests that look at the wire
        self.upstream = bytearray()  # everything the clients sent

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def start(self) -> CuttableProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, tap: bytearray | None = None) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if tap is not None:
                        tap += data
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, self.upstream), pipe(up_reader, writer, self.downstream))
        self.writers -= {writer, up_writer}

    def cut(self) -> None:
        """Reset every open connection, both ways, as a dropped network would."""
        self.cuts += 1
        for writer in list(self.writers):
            transport = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
