"""The server tier's record-side backend on Neo4j 5: ``records`` owns the async driver that
the entity, skill, learning and consolidation stores share; ``vectors`` is the vector index
kept in the same database (``WW_VECTOR_BACKEND=neo4j``).

Nothing is imported here: the ``neo4j`` driver is the optional ``server`` extra, and the
factory imports these modules only when a setting asks for Neo4j.
"""

__all__: list[str] = []
