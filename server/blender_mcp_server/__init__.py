"""The thin companion FastMCP server that hosts the BlenderMCP bus.

Folders, lowest first: storage/ and delivery/ -> transport/ -> bus/ -> auth/ -> tools/ -> app.py -> cli.py
(docs/architecture.md, "The data path").
"""

__version__ = "0.1.0"
