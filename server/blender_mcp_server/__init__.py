"""The thin companion FastMCP server that hosts the BlenderMCP bus.

Layers, each a module: config -> store -> tokens -> http_routes (auth) ->
registry -> router -> forwarder -> jobs -> bus -> tools_bus / tools_dispatch -> app -> cli.
"""

__version__ = "0.1.0"
