"""What MCP clients see: the bus tools, the flat dispatch tools, resources and prompts."""
