"""Server-tier vector index kept in Neo4j, so several API workers can share it.

Neither Qdrant Edge nor qdrant-client's local mode may be opened by more than one process;
a Qdrant server can, but is one more service to run. This backend keeps each vector as a
node of the database the records already live in: one label per memory type (as the Qdrant
backends keep one collection per memory type), with the session, the id, the unit vector
and the payload's filterable fields as properties, and a second label per session. A part of
a memory (``VectorItem.parts``) is a node like any other, marked by ``part_of`` and ``part``;
searches group hits by ``coalesce(n.part_of, n.id)`` at their best score.

A small session is searched by exact scan: cosine against every node of the session that
passes the filter, computed in Cypher, about 33 µs per vector on a 2-core VM. A session of
``index_threshold`` vectors or more (``WW_NEO4J_VECTOR_INDEX_THRESHOLD``) gets its own
HNSW index over its session label, which proposes candidates that the same filter and score
then judge, with the exact scan as the fallback (``ww.storage.neo4j.vector_ann``). Neo4j
builds those indexes itself, so ``optimize()`` has nothing to do and ``unindexed()`` is 0.

Results agree with Qdrant Edge's: vectors are stored unit-normalised in float32 as Qdrant
stores them for cosine, scores are compared at float32 precision and ties broken by id
(``ww.storage.ranking``). The contract suites check it against Qdrant Edge, with and
without the index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Unpack
from uuid import UUID

import numpy as np

from ww.models import EpisodeFilter
from ww.storage.neo4j.driver import ConnectionOptions, listed, tx_all, tx_consume, tx_list
from ww.storage.neo4j.vector_ann import BY_MEMORY, SessionIndexes
from ww.storage.payload import MatchTerm, filter_terms
from ww.storage.ports import PART_KEYS, ScoredId, Vector, VectorItem
from ww.storage.vector_base import Fetch, NothingToOptimize, Search, VectorIndexBase

__all__ = ["DEFAULT_INDEX_THRESHOLD", "DEFAULT_OVERSAMPLE", "Neo4jVectorIndex", "node_props"]

# Chosen by measurement (docs/benchmarks.md): below this many vectors a scan costs at most
# about 35 ms on a quiet 2-core VM, too little to give every small session an index of
# its own to keep; at 1,000 the index answered about 3x faster than the scan.
DEFAULT_INDEX_THRESHOLD = 1000
DEFAULT_OVERSAMPLE = 4


_LABELS = {"episodes": "WwVecEpisode", "entities": "WwVecEntity", "skills": "WwVecSkill"}
# Payload fields are stored as ``p_<key>`` so that no payload key can overwrite ``id``,
# ``session_id`` or ``embedding``; metadata (a map, which Neo4j properties cannot hold)
# becomes a list of JSON ``[key, tag]`` pairs, matched by membership.
_PREFIX = "p_"
_METADATA = "metadata"
_META_PROP = f"{_PREFIX}{_METADATA}"


def _meta_term(key: str, tag: Any) -> str:
    return json.dumps([key, tag], separators=(",", ":"))


def node_props(payload: dict[str, Any]) -> dict[str, Any]:
    """The node properties that hold ``payload``: scalars as they are (None removes one),
    metadata as its terms. Other values are not filterable and are not kept."""
    props: dict[str, Any] = {}
    for key, value in payload.items():
        if key == _METADATA:
            meta = value if isinstance(value, dict) else {}
            props[_META_PROP] = sorted(_meta_term(k, v) for k, v in meta.items())
        elif value is None or isinstance(value, str | int | float | bool):
            props[f"{_PREFIX}{key}"] = value
    return props


# How far from 1 a float32 vector's norm may be and still count as unit length.
_UNIT_TOL = 1e-6


def _unit(vector: Vector) -> list[float]:
    """The vector as Qdrant stores it in a cosine collection: float32, unit length.

    One that is unit length already (every embedding, and every vector an export carries)
    is kept bit for bit: dividing by a norm of 0.99999994 would move its last bits, and an
    export from one tier imported into another would no longer round-trip exactly.
    """
    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v.astype(np.float64)))
    if norm > 0 and abs(norm - 1.0) > _UNIT_TOL:
        v = (v / np.float32(norm)).astype(np.float32)
    return [float(x) for x in v]


def _where(flt: EpisodeFilter, params: dict[str, Any]) -> list[str]:
    """Cypher conditions on node ``n`` for the terms of ``flt`` (values as parameters)."""
    conds: list[str] = []
    for i, term in enumerate(filter_terms(flt)):
        if isinstance(term, MatchTerm):
            if term.key.startswith(f"{_METADATA}."):
                key = term.key.removeprefix(f"{_METADATA}.")
                params[f"m{i}"] = _meta_term(key, term.value)
                conds.append(f"$m{i} IN n.{_META_PROP}")
            else:
                params[f"k{i}"], params[f"v{i}"] = f"{_PREFIX}{term.key}", term.value
                conds.append(f"n[$k{i}] = $v{i}")
            continue
        params[f"k{i}"] = f"{_PREFIX}{term.key}"
        if term.gte is not None:
            params[f"g{i}"] = term.gte
            conds.append(f"n[$k{i}] >= $g{i}")
        if term.lt is not None:
            params[f"l{i}"] = term.lt
            conds.append(f"n[$k{i}] < $l{i}")
    return conds


class Neo4jVectorIndex(SessionIndexes, VectorIndexBase, NothingToOptimize):
    """``VectorIndex`` on nodes of one label in Neo4j 5 (``WW_VECTOR_BACKEND=neo4j``).

    Connection settings are the record store's (``WW_NEO4J_*``); each index has its own
    driver, so it opens and closes independently of the record store. ``index_threshold``
    0 keeps every session on the exact scan.
    """

    _closed_message = "index is closed"

    def __init__(
        self,
        uri: str,
        dimension: int,
        *,
        memory_type: str = "episodes",
        index_threshold: int = DEFAULT_INDEX_THRESHOLD,
        oversample: int = DEFAULT_OVERSAMPLE,
        **options: Unpack[ConnectionOptions],
    ) -> None:
        super().__init__(uri, **options)
        self._dimension = dimension
        self.label = _LABELS[memory_type]
        self._init_indexes(index_threshold, oversample)

    # -- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        name, label = self.label.lower(), self.label
        # The id is unique across sessions, as a Qdrant point id is in its collection (and
        # a unique constraint is what makes MERGE safe against a concurrent worker); the
        # session index serves every query. IF NOT EXISTS: every worker runs these.
        schema = (
            f"CREATE CONSTRAINT {name}_id IF NOT EXISTS FOR (n:{label}) REQUIRE n.id IS UNIQUE",
            f"CREATE INDEX {name}_session IF NOT EXISTS FOR (n:{label}) ON (n.session_id, n.id)",
            # A memory's parts, reached by set_payload, delete and the stale-part cleanup.
            f"CREATE INDEX {name}_part IF NOT EXISTS FOR (n:{label}) ON (n.part_of)",
        )
        await self._connect(schema)
        try:
            rows = await self._read(
                tx_all(f"MATCH (n:{self.label}) RETURN size(n.embedding) AS d LIMIT 1", {})
            )
        except BaseException:
            await self.close()
            raise
        if rows and rows[0]["d"] != self._dimension:
            await self.close()
            raise RuntimeError(
                f"Neo4j vectors {self.label} at {self._uri} have dimension {rows[0]['d']}, "
                f"not {self._dimension}"
            )

    async def check(self) -> None:
        await self._read(tx_all("RETURN 1 AS ok", {}))

    # -- writes -----------------------------------------------------------------------------
    async def _upsert(self, session_id: str, items: Sequence[VectorItem]) -> None:
        rows = [
            {
                "id": str(i.id),
                "props": {
                    **node_props({k: v for k, v in i.payload.items() if k not in PART_KEYS}),
                    # A part's marks are unprefixed, as the id is: no payload key can set them.
                    **{k: i.payload[k] for k in PART_KEYS if k in i.payload},
                    "id": str(i.id),
                    "session_id": session_id,
                    "embedding": _unit(i.vector),
                },
            }
            for i in items
        ]
        # ``SET n = ...`` replaces every property: an upsert replaces the whole payload, as a
        # Qdrant upsert does.
        label = self.session_label(session_id)
        await self._write(
            tx_consume(
                f"UNWIND $rows AS r MERGE (n:{self.label} {{id: r.id}}) SET n = r.props, n:{label}",
                {"rows": rows},
            )
        )

    async def _written(self, session_id: str) -> None:
        # Once per upsert, after all its chunks: one count, and a new index is built over
        # the whole batch at once.
        await self.index_if_large(session_id)

    async def _delete_parts_beyond(self, session_id: str, keep: Mapping[UUID, int]) -> None:
        await self._write(
            tx_consume(
                f"UNWIND $rows AS r MATCH (n:{self.label} {{part_of: r.id}}) "
                "WHERE n.session_id = $sid AND n.part > r.keep DELETE n",
                {"sid": session_id, "rows": [{"id": str(m), "keep": k} for m, k in keep.items()]},
            )
        )

    def _memory_nodes(self) -> str:
        """Cypher binding ``n`` to each node of the memories ``$ids`` of session ``$sid``:
        their own and their parts' (each found through its own index)."""
        return (
            f"CALL {{ MATCH (n:{self.label} {{session_id: $sid}}) WHERE n.id IN $ids RETURN n "
            f"UNION MATCH (n:{self.label}) WHERE n.part_of IN $ids AND n.session_id = $sid "
            "RETURN n } "
        )

    async def _set_payload(self, session_id: str, item_id: UUID, payload: dict[str, Any]) -> None:
        props = node_props({k: v for k, v in payload.items() if k != "session_id"})
        # ``+=`` merges: keys not named keep their values, as Qdrant's set_payload does.
        await self._write(
            tx_consume(
                f"{self._memory_nodes()} SET n += $props",
                {"sid": session_id, "ids": [str(item_id)], "props": props},
            )
        )

    async def _delete(self, session_id: str, ids: Sequence[UUID]) -> None:
        await self._write(
            tx_consume(
                f"{self._memory_nodes()} DELETE n",
                {"sid": session_id, "ids": sorted({str(i) for i in ids})},
            )
        )

    async def delete_session(self, session_id: str) -> None:
        await self.drop_index(session_id)
        await self._write(
            tx_consume(f"MATCH (n:{self.label} {{session_id: $sid}}) DELETE n", {"sid": session_id})
        )
        # Again: an upsert racing this one may have created the index between the two. One
        # that creates it after this sees the session empty and drops it itself.
        await self.drop_index(session_id)

    # -- reads ------------------------------------------------------------------------------
    def _searcher(self, q: Search) -> Fetch:
        params: dict[str, Any] = {"sid": q.session_id, "q": _unit(q.vector)}
        conds = _where(q.flt, params)
        if q.within is not None:
            params["within"] = sorted({str(i) for i in q.within})
            conds.append("(n.id IN $within OR n.part_of IN $within)")
        where = f"WHERE {' AND '.join(conds)} " if conds else ""
        # Canonical UUID strings sort as their integers do, so the id tie-break here is
        # ranking's own.
        query = f"MATCH (n:{self.label} {{session_id: $sid}}) {where}{BY_MEMORY}"

        async def fetch(n: int) -> list[ScoredId]:
            if q.within is None:  # ``within`` is a handful of ids: the scan is the fast way
                hits = await self.index_hits(q.session_id, conds, params, n)
                if hits is not None:
                    return hits
            rows = await self._read(tx_list(query, {**params, "n": n}))
            return [ScoredId(UUID(r["id"]), float(r["score"])) for r in rows]

        return fetch

    async def _get_vectors(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Vector]:
        rows = await self._read(
            tx_list(
                f"MATCH (n:{self.label} {{session_id: $sid}}) "
                f"WHERE n.id IN $ids AND n.part_of IS NULL {listed(id='n.id', v='n.embedding')}",
                {"sid": session_id, "ids": sorted({str(i) for i in ids})},
            )
        )
        return {UUID(r["id"]): np.asarray(r["v"], dtype=np.float32) for r in rows}

    async def ids(self, session_id: str) -> set[UUID]:
        rows = await self._read(
            tx_all(
                f"MATCH (n:{self.label} {{session_id: $sid}}) WHERE n.part_of IS NULL "
                "RETURN n.id AS id",
                {"sid": session_id},
            )
        )
        return {UUID(r["id"]) for r in rows}

    async def count(self, session_id: str) -> int:
        rows = await self._read(
            tx_all(
                f"MATCH (n:{self.label} {{session_id: $sid}}) WHERE n.part_of IS NULL "
                "RETURN count(n) AS c",
                {"sid": session_id},
            )
        )
        return int(rows[0]["c"])
