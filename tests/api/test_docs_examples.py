"""Every ```python block in the docs runs, in order, against a fresh app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ww.api import create_app
from ww.config import Settings
from ww.embedding import EmbeddingService
from ww.engine import build_engine

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "api.md"]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(path: Path) -> list[str]:
    return _BLOCK.findall(path.read_text())


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_examples_run(doc: Path, settings: Settings, embedding_service: EmbeddingService) -> None:
    code = blocks(doc)
    assert code, f"{doc} has no python examples"
    engine = build_engine(settings, embedder=embedding_service)
    with TestClient(create_app(settings, engine)) as client:
        namespace: dict[str, object] = {"client": client}
        for i, block in enumerate(code):
            try:
                exec(compile(block, f"{doc.name}[{i}]", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"example {i} of {doc.name} failed:\n{block}") from exc
