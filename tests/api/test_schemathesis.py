"""Schema-driven fuzzing: schemathesis generates requests for every operation in the app's
OpenAPI document and runs them in-process (ASGI), with the app's lifespan started.

Every response must not be a server error, and must match the documented status codes,
content types and schemas.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks
from schemathesis.openapi import from_asgi

from tests.api.helpers import scratch_dir
from tests.conftest import ManualClock
from tests.neo4j_launcher import reset_record_store
from ww.api import create_app
from ww.config import Settings
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import build_engine

# The admin import takes JSON Lines; fuzzed bodies go on the wire as text.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]

# None keeps whatever schemathesis generated for X-Session-ID (often missing or invalid);
# the others pin a valid session, so operations also run against sessions holding data.
SESSIONS = st.sampled_from([None, "default", "fuzz-a", "fuzz.b:2", "fuzz-empty"])


def _stop_lifespans() -> None:
    # schemathesis starts an ASGI app's lifespan on first use and its pytest plugin stops it
    # after each test; stopping it here first closes the engine before its data goes away.
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()


def _operations() -> list[tuple[str, str]]:
    # Building the schema touches no data: the engine only opens in the lifespan.
    cfg = Settings(_env_file=None, data_dir="/nonexistent/ww-schema-only", environment="test")  # type: ignore[arg-type]
    paths = create_app(cfg).openapi()["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() for method in ops)


OPERATIONS = _operations()
SEEDED_SESSIONS = ["default", "fuzz-a", "fuzz.b:2"]


@dataclass
class Fuzzed:
    schema: schemathesis.BaseSchema
    episode_ids: list[str]
    entity_ids: list[str]
    relation_ids: list[str]
    skill_ids: list[str]
    recall_ids: list[str]


@pytest.fixture
def api(onnx_embedder: OnnxEmbedder) -> Iterator[Fuzzed]:
    """A fresh app per operation (the schemathesis plugin ends app lifespans after each test),
    holding a few episodes in each seeded session so id-based operations find something."""
    with scratch_dir("ww-fuzz-") as tmp:
        cfg = Settings(_env_file=None, data_dir=tmp / "data", environment="test")  # type: ignore[arg-type]
        reset_record_store(cfg)
        service = EmbeddingService(onnx_embedder, cache_size=4096, batch_size=32)
        engine = build_engine(cfg, clock=ManualClock(), embedder=service)
        app = create_app(cfg, engine)
        try:
            schema = from_asgi("/openapi.json", app)
            ids: list[str] = []
            seed = schema["/api/v1/episodes/batch"]["POST"]
            for session in SEEDED_SESSIONS:
                body = {
                    "episodes": [
                        {"content": f"{session} seed {i}", "metadata": {"n": i}} for i in range(3)
                    ]
                }
                r = seed.Case(body=body, headers={"X-Session-ID": session}).call()
                assert r.status_code == 201, r.text
                ids += [ep["id"] for ep in r.json()["episodes"]]
            entity_ids, relation_ids, skill_ids = _seed_memories(schema)
            # Recalls with learn, so feedback has real recall ids to reward.
            recall = schema["/api/v1/episodes/recall"]["POST"]
            recall_ids: list[str] = []
            for session in SEEDED_SESSIONS:
                body = {"query": f"{session} seed", "limit": 3}
                r = recall.Case(body=body, headers={"X-Session-ID": session}).call()
                assert r.status_code == 200, r.text
                recall_ids.append(r.json()["recall_id"])
            yield Fuzzed(schema, ids, entity_ids, relation_ids, skill_ids, recall_ids)
        finally:
            _stop_lifespans()


def _seed_memories(schema: schemathesis.BaseSchema) -> tuple[list[str], list[str], list[str]]:
    """Two related entities (one superseded) and two skills per seeded session."""
    entities, relations, skills = [], [], []
    for session in SEEDED_SESSIONS:
        headers = {"X-Session-ID": session}
        made = []
        for name in ("alpha", "beta"):
            r = (
                schema["/api/v1/entities"]["POST"]
                .Case(body={"name": f"{session} {name}", "summary": "seed"}, headers=headers)
                .call()
            )
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
        r = (
            schema["/api/v1/entities/{entity_id}/relations"]["POST"]
            .Case(
                path_parameters={"entity_id": made[0]},
                body={"target_id": made[1], "weight": 0.7},
                headers=headers,
            )
            .call()
        )
        assert r.status_code == 201, r.text
        relations.append(r.json()["id"])
        entities += made
        for name in ("deploy", "backup"):
            body = {
                "name": name,
                "task": f"{name} {session}",
                "steps": [{"order": 1, "action": name}],
            }
            r = schema["/api/v1/skills"]["POST"].Case(body=body, headers=headers).call()
            assert r.status_code == 201, r.text
            skills.append(r.json()["id"])
    return entities, relations, skills


def _strategy(operation: Any, fuzzed: Fuzzed) -> st.SearchStrategy[schemathesis.Case]:
    options = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    names = {p.name for p in operation.path_parameters}
    if "episode_id" in names:
        options += [
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"episode_id": i})
            for i in fuzzed.episode_ids
        ]
    for name, known in (
        ("entity_id", fuzzed.entity_ids),
        ("relation_id", fuzzed.relation_ids),
        ("skill_id", fuzzed.skill_ids),
    ):
        if name in names:
            options += [
                operation.as_strategy(GenerationMode.POSITIVE, path_parameters={name: i})
                for i in known
            ]
    if "session_id" in names:
        options += [
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"session_id": s})
            for s in SEEDED_SESSIONS
        ]
    if operation.path == "/api/v1/feedback":
        options += [
            operation.as_strategy(GenerationMode.POSITIVE).map(partial(_with_recall, recall_id=r))
            for r in fuzzed.recall_ids
        ]
    return st.one_of(options).map(_bounded)


def _with_recall(case: schemathesis.Case, recall_id: str) -> schemathesis.Case:
    if isinstance(case.body, dict):
        case.body["recall_id"] = recall_id
    return case


def _bounded(case: schemathesis.Case) -> schemathesis.Case:
    """Keep batch bodies small: each new text costs a model call, and 1000 long texts per
    example would take minutes. (The 1000-item limit itself is tested in test_episodes.)"""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("episodes"), list):
        body["episodes"] = body["episodes"][:5]
    return case


def test_every_operation_is_fuzzed() -> None:
    # Guards the parametrisation below against silently losing operations.
    assert len(OPERATIONS) >= 35
    assert ("POST", "/api/v1/episodes/recall") in OPERATIONS
    for op in [
        ("POST", "/api/v1/entities/{entity_id}/supersede"),
        ("POST", "/api/v1/entities/spread-activation"),
        ("DELETE", "/api/v1/entities/{entity_id}/relations/{relation_id}"),
        ("POST", "/api/v1/skills/how-to"),
        ("POST", "/api/v1/skills/{skill_id}/execute"),
        ("POST", "/api/v1/recall"),
        ("POST", "/api/v1/consolidate"),
        ("GET", "/api/v1/consolidate/links/{memory_id}"),
        ("GET", "/api/v1/admin/export"),
        ("POST", "/api/v1/admin/import"),
    ]:
        assert op in OPERATIONS
    assert ("POST", "/api/v1/feedback") in OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_its_schema(api: Fuzzed, method: str, path: str) -> None:
    operation = api.schema[path][method]

    @given(case=_strategy(operation, api), session=SESSIONS)
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,  # the same cases every run: a failure here is reproducible
    )
    def run(case: schemathesis.Case, session: str | None) -> None:
        headers = {"X-Session-ID": session} if session is not None else None
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
