"""World Weaver's MCP server (``docs/mcp.md``): ``python -m ww.mcp`` or ``ww.mcp.server.run``.

Needs the ``mcp`` extra (``pip install "world-weaver[mcp]"``), and ``[api]`` too for
``--embedded``. Importing this package loads neither: ``ww.mcp.server`` does.
"""

__all__: list[str] = []
