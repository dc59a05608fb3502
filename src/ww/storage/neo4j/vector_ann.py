"""Per-session HNSW indexes for the Neo4j vector backend (``WW_VECTOR_BACKEND=neo4j``).

An exact Cypher scan costs time in proportion to the session: about 33 µs per vector on a
2-core VM, a third of a second at 10,000 (``bench/vector_scan.py``). A session that reaches
``WW_NEO4J_VECTOR_INDEX_THRESHOLD`` vectors of one memory type gets its own Neo4j vector
index (HNSW) instead, over a label only its nodes carry, as its keywords get their own
full-text index: Neo4j 5 filters only after an approximate search, so one index shared by
every session would lose a small session's hits among the others'. Smaller sessions keep the
exact scan, which is as fast there and needs no index.

The index only proposes candidates: ``oversample`` times the hits asked for (at least
``MIN_CANDIDATES``). The session and payload filters then run on those nodes, and the score is
recomputed from the stored vector by the same Cypher expression the exact scan uses, so the
two paths rank and score identically (both count a part's hit for its memory). When fewer
memories than asked for survive the filters while the index had more to give (a selective
filter, or a few memories' many parts crowding the candidates), the index is asked again for
twice the candidates, up to ``MAX_CANDIDATES_FACTOR`` times the first number, and only then
does the caller fall back to the exact scan: a filtered search never loses a hit to the
approximation, only an unfiltered one can, and only a near-tie of the last hits (overlap@10
against the exact scan: docs/benchmarks.md).

On the index path a memory scores the best of its nodes among the candidates (its main
vector and parts): a best part the approximation missed can lower a memory's score there,
where the exact scan sees every node.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from uuid import UUID

from neo4j.exceptions import ClientError

from ww.storage.neo4j.driver import Neo4jConnection, listed, tx_all, tx_consume, tx_single
from ww.storage.neo4j.rows import session_key
from ww.storage.ports import ScoredId

__all__ = [
    "BY_MEMORY",
    "MAX_CANDIDATES_FACTOR",
    "MIN_CANDIDATES",
    "QUANTISED_FROM",
    "SCORE",
    "SessionIndexes",
    "index_options",
]

log = logging.getLogger(__name__)

# The cosine Qdrant reports, of node ``n`` and query ``$q``: vector.similarity.cosine answers
# (1 + cos) / 2, in [0, 1]. Both search paths score with it, so they agree to the bit.
SCORE = "2.0 * vector.similarity.cosine(n.embedding, $q) - 1.0"
# The nodes ``n`` (after the filters) as one hit per memory: a part counts for the memory it
# is ``part_of``, at the best score of them all; ``$n`` memories, best first, ties by id,
# ``listed`` (read with ``tx_list``).
BY_MEMORY = (
    f"WITH coalesce(n.part_of, n.id) AS id, max({SCORE}) AS score "
    f"WITH id, score ORDER BY score DESC, id LIMIT $n {listed(id='id', score='score')}"
)

# The graph walks int8 copies of the vectors (Lucene's scalar quantisation): a search for a
# recall's 200 candidates at 100,000 vectors of 384 dimensions took 28 ms instead of 50, and
# since every candidate is rescored from its stored float vector (``SCORE``) only the
# candidate set could change; its top ten did not (overlap@10 1.0 against the exact scan,
# bench/hnsw_options.py). Fewer links per node (``vector.hnsw.m`` 8) saved 4 ms more and lost
# a true top hit on some queries (overlap@10 down to 0.7). Shorter vectors keep their
# floats: on the near-ties of clustered vectors with isotropic noise (one run each) an int8
# graph missed 6-8 of 620 true top-ten hits at 16, 64 and 128 dimensions where floats missed
# 0-2; at 256 neither missed one, at 384 both missed 7-8 (such noise makes near-ties of a
# whole cluster there). An index keeps the options it was created with.
QUANTISED_FROM = 256


def index_options(dimension: int) -> str:
    """The ``indexConfig`` entries of a new session index besides its dimension and
    similarity function."""
    quantised = "true" if dimension >= QUANTISED_FROM else "false"
    return f"`vector.quantization.enabled`: {quantised}, `vector.hnsw.m`: 16"


# Candidates asked of the index, at the least: HNSW's search breadth is its k, and below
# about 100 its recall of the true top ten drops on 384-d embeddings.
MIN_CANDIDATES = 100
# How far the candidates may grow (doubling) before the exact scan answers instead: a
# memory's many parts can crowd the first candidates, and a larger k is cheaper than a scan.
MAX_CANDIDATES_FACTOR = 16
# How long a search believes a session has no online index before asking again: another
# worker may have created it meanwhile (the exact scan stays correct, only slower).
_RECHECK_S = 10.0
# Seconds a write that created an index waits for it to come online; a longer population
# (a large session met for the first time) goes on in the background. Only the one write
# that creates a session's index waits, and the exact scan answers searches meanwhile.
_POPULATE_WAIT_S = 30
_MAX_REMEMBERED = 4096
# Unlabelled vectors labelled per transaction, so healing a large session never makes one
# huge write.
_LABEL_BATCH = 10_000


class SessionIndexes(Neo4jConnection):
    """The per-session vector indexes of one label (a mixin of ``Neo4jVectorIndex``)."""

    label: str
    _dimension: int
    # How often a search checks its session for vectors without the session label.
    relabel_every_s: float = _RECHECK_S

    def _init_indexes(self, threshold: int, oversample: int) -> None:
        self.index_threshold = threshold
        self.oversample = oversample
        self._online: set[str] = set()
        # Sessions whose index this worker has created (or waited for): later writes to them
        # need neither the count nor another wait while the index populates.
        self._created: set[str] = set()
        self._absent: dict[str, float] = {}  # session -> when it was last seen without one
        # session -> when a search last checked that all its vectors carry its label.
        self._label_checked: dict[str, float] = {}

    def session_label(self, session_id: str) -> str:
        """The label that puts a session's vectors (and only them) in its vector index."""
        return f"{self.label}_{session_key(session_id)}"

    def session_index(self, session_id: str) -> str:
        return f"{self.label.lower()}_{session_key(session_id)}"

    # -- creation, on the write path ----------------------------------------------------------
    async def index_if_large(self, session_id: str) -> None:
        """Create the session's index once it holds ``threshold`` vectors (0: never)."""
        if self.index_threshold <= 0 or session_id in self._created:
            return
        rows = await self._read(
            tx_all(
                f"MATCH (n:{self.label} {{session_id: $sid}}) RETURN count(n) AS c",
                {"sid": session_id},
            )
        )
        if int(rows[0]["c"]) < self.index_threshold:
            return
        label, index = self.session_label(session_id), self.session_index(session_id)
        # Vectors written before their backend had indexes lack the session label.
        await self._label_all(session_id)
        await self._create_index(
            f"CREATE VECTOR INDEX {index} IF NOT EXISTS FOR (n:{label}) ON n.embedding "
            "OPTIONS {indexConfig: {`vector.dimensions`: $dim, "
            f"`vector.similarity_function`: 'cosine', {index_options(self._dimension)}}}}}",
            {"dim": self._dimension},
        )
        self._absent.pop(session_id, None)
        self._created.add(session_id)
        if not await self._read(tx_all(self._any_vector(), {"sid": session_id})):
            # delete_session ran between the count and the creation: no index outlives it.
            await self.drop_index(session_id)
            return
        try:
            await self._read(
                tx_consume("CALL db.awaitIndex($name, $s)", {"name": index, "s": _POPULATE_WAIT_S})
            )
        except ClientError:  # still populating: searches scan until it is online
            log.warning("vector index %s still populating", index)
            return
        self._online.add(session_id)

    def _any_vector(self) -> str:
        return f"MATCH (n:{self.label} {{session_id: $sid}}) RETURN n.id AS id LIMIT 1"

    async def _label_all(self, session_id: str) -> None:
        label = self.session_label(session_id)
        query = (
            f"MATCH (n:{self.label} {{session_id: $sid}}) WHERE NOT n:{label} "
            f"WITH n LIMIT $batch SET n:{label} RETURN count(n) AS c"
        )
        while True:
            rows = await self._write(tx_all(query, {"sid": session_id, "batch": _LABEL_BATCH}))
            if int(rows[0]["c"]) < _LABEL_BATCH:
                return

    async def _label_stragglers(self, session_id: str) -> None:
        """Label the session's vectors that lack its label, at most every ``_RECHECK_S``.

        A worker of an older release (mid rolling restart) writes vectors without the
        session label, and the index holds only labelled nodes: a search that finds enough
        hits in the index would never see those, nor fall back to the scan. Comparing the
        two counts is a read (the label's count comes from the count store); only a
        difference costs a write.
        """
        now = time.monotonic()
        if now - self._label_checked.get(session_id, -_RECHECK_S) < self.relabel_every_s:
            return
        if len(self._label_checked) >= _MAX_REMEMBERED:
            self._label_checked = {
                s: t for s, t in self._label_checked.items() if now - t < self.relabel_every_s
            }
        self._label_checked[session_id] = now
        rows = await self._read(
            tx_all(
                f"RETURN COUNT {{ MATCH (n:{self.session_label(session_id)}) }} AS labelled, "
                f"COUNT {{ MATCH (n:{self.label} {{session_id: $sid}}) }} AS total",
                {"sid": session_id},
            )
        )
        if rows[0]["labelled"] != rows[0]["total"]:
            log.info("labelling vectors written without their session label")
            await self._label_all(session_id)

    async def drop_index(self, session_id: str) -> None:
        self._created.discard(session_id)
        self._online.discard(session_id)
        self._absent.pop(session_id, None)
        self._label_checked.pop(session_id, None)
        await self._write(tx_consume(f"DROP INDEX {self.session_index(session_id)} IF EXISTS", {}))

    # -- search ---------------------------------------------------------------------------------
    async def _index_online(self, session_id: str) -> bool:
        if self.index_threshold <= 0:
            return False
        if session_id in self._online:
            return True
        now = time.monotonic()
        if now - self._absent.get(session_id, -_RECHECK_S) < _RECHECK_S:
            return False
        rows = await self._read(
            tx_all(
                "SHOW VECTOR INDEXES YIELD name, state WHERE name = $name RETURN state",
                {"name": self.session_index(session_id)},
            )
        )
        if rows and rows[0]["state"] == "ONLINE":
            self._online.add(session_id)
            self._absent.pop(session_id, None)
            return True
        if len(self._absent) >= _MAX_REMEMBERED:
            self._absent = {s: t for s, t in self._absent.items() if now - t < _RECHECK_S}
        self._absent[session_id] = now
        return False

    async def index_hits(
        self, session_id: str, conds: list[str], params: dict[str, Any], n: int
    ) -> list[ScoredId] | None:
        """The best ``n`` hits through the session's index, or None where only the exact
        scan can answer: no index online, or too few candidates passed the filters."""
        if not await self._index_online(session_id):
            return None
        await self._label_stragglers(session_id)
        first = max(n * self.oversample, MIN_CANDIDATES)
        where = " AND ".join(["n.session_id = $sid", *conds])
        # The candidates are collected first so that their number survives the filter, even
        # when none passes it: fewer than k means the index gave every vector it holds.
        query = (
            "CALL db.index.vector.queryNodes($index, $k, $q) YIELD node "
            "WITH collect(node) AS found "
            f"CALL (found) {{ UNWIND found AS n WITH n WHERE {where} {BY_MEMORY} }} "
            "RETURN size(found) AS total, rows"
        )
        args = {**params, "index": self.session_index(session_id), "n": n}
        k = first
        while True:
            try:
                got = await self._read(tx_single(query, {**args, "k": k}))
            except ClientError:
                # Dropped by another worker with its session: scan, look again later, and
                # let the session's next write here create it again.
                self._online.discard(session_id)
                self._created.discard(session_id)
                return None
            rows = got["rows"]
            if len(rows) >= n or got["total"] < k:
                return [ScoredId(UUID(r["id"]), float(r["score"])) for r in rows]
            if k >= first * MAX_CANDIDATES_FACTOR:
                return None
            k *= 2
