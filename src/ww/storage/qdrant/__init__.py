"""Vector indexes on Qdrant: ``edge`` (Qdrant Edge in-process, the embedded default) and
``server`` (a Qdrant server through qdrant-client, ``WW_QDRANT_URL``), the local/remote pair.

Nothing is imported here: qdrant-client is the optional ``server`` extra.
"""

__all__: list[str] = []
