"""MCP over Streamable HTTP: the GET-stream channel, stream watching, pings, request limits, SDK shims."""
