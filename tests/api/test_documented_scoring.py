"""What ``docs/api.md`` and ``docs/architecture.md`` say about scoring holds for the code:
the unified-recall ratio ``type_score / score`` per preset, and long content being embedded
from its first word pieces only while keyword search sees all of it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder
from ww.engine.recall import PRESETS, Preset
from ww.models import MAX_CONTENT_CHARS

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def shared_client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, ManualClock()) as c:
        yield c


@pytest.fixture
def client(shared_client: TestClient) -> Iterator[TestClient]:
    shared_client.headers["X-Session-ID"] = new_session_id("doc")
    yield shared_client


def _ratio(preset: Preset, cues: tuple[str, ...] = ()) -> float:
    """The sum of every weight the preset has but the time-cue ones the query lacks, read
    off the dataclass, not through the function unified recall divides by."""
    weights = PRESETS[preset]
    return sum(
        getattr(weights, f.name)
        for f in dataclasses.fields(weights)
        if f.name not in ("time", "newest") or f.name in cues
    )


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("preset", list(Preset))
def test_unified_score_is_type_score_over_the_presets_weights(
    client: TestClient, preset: Preset
) -> None:
    texts = [f"nightly postgres backup {i} finished" for i in range(5)]
    r = client.post("/api/v1/episodes/batch", json={"episodes": [{"content": t} for t in texts]})
    assert r.status_code == 201, r.text
    assert client.post("/api/v1/entities", json={"name": "Postgres backup"}).status_code == 201
    body = {"query": "postgres backup", "preset": preset.value, "learn": False}
    hits = client.post("/api/v1/recall", json=body).json()["hits"]
    episodes = [h for h in hits if h["memory_type"] == "episode" and h["score"] > 0]
    assert episodes
    expected = _ratio(preset)
    for h in episodes:
        assert h["type_score"] / h["score"] == pytest.approx(expected, rel=1e-6)
    for h in hits:
        if h["memory_type"] != "episode":
            assert h["score"] == pytest.approx(h["type_score"])
    # Both docs state the ratio the code uses, to two decimals.
    stated = f"{expected:.2f}"
    for doc in ("api.md", "architecture.md"):
        text = _flat((DOCS / doc).read_text())
        assert stated in text, f"{doc} does not state {stated} for {preset}"
        assert "1.17" not in text
        assert "1.55" not in text


@pytest.mark.parametrize(
    ("query", "cues"),
    [
        ("postgres backup yesterday", ("time",)),
        ("latest postgres backup", ("newest",)),
        ("latest postgres backup from yesterday", ("time", "newest")),
    ],
)
def test_a_time_cue_counts_its_weight_in_the_unified_total(
    client: TestClient, query: str, cues: tuple[str, ...]
) -> None:
    texts = [f"nightly postgres backup {i} finished" for i in range(3)]
    r = client.post("/api/v1/episodes/batch", json={"episodes": [{"content": t} for t in texts]})
    assert r.status_code == 201, r.text
    hits = client.post("/api/v1/recall", json={"query": query, "learn": False}).json()["hits"]
    episodes = [h for h in hits if h["memory_type"] == "episode" and h["score"] > 0]
    assert episodes
    for h in episodes:
        assert h["type_score"] / h["score"] == pytest.approx(_ratio(Preset.BALANCED, cues))


def test_long_content_is_searchable_by_meaning_to_its_end(client: TestClient) -> None:
    fact = "the vault code is quetzal"
    filler = " ".join(f"entry{i} routine log line with nothing of note" for i in range(2000))
    content = (filler[: MAX_CONTENT_CHARS - len(fact) - 1] + " " + fact)[:MAX_CONTENT_CHARS]
    assert content.endswith(fact)
    r = client.post("/api/v1/episodes", json={"content": content})
    assert r.status_code == 201, r.text
    body = {"query": "vault code quetzal", "learn": False}
    hits = client.post("/api/v1/episodes/recall", json=body).json()["hits"]
    assert [h["id"] for h in hits] == [r.json()["id"]]
    parts = hits[0]["score_parts"]
    assert parts["keyword"] > 0
    # The fact lies past what the main vector sees; the window that holds it finds it.
    assert parts["semantic"] > 0.4
    readme = _flat((DOCS.parent / "README.md").read_text())
    api = _flat((DOCS / "api.md").read_text())
    for text in (readme, api):
        assert "WW_EMBEDDING_MAX_LENGTH" in text and "256" in text
    assert "WW_EMBEDDING_WINDOW_LENGTH" in readme
    assert re.search(r"window of 64 word pieces of its whole text", api), "api.md: windows"
