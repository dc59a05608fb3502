"""Every ```python block in the docs runs, in order, against a fresh app (docs/sdk.md:
against a fresh server on a loopback port)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.sdk.server import make_app, serve
from ww.api import create_app
from ww.config import Settings
from ww.embedding import EmbeddingService
from ww.engine import build_engine
from ww.sdk import WorldWeaver

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


def test_sdk_examples_run(
    settings: Settings,
    embedding_service: EmbeddingService,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/sdk.md against a real server on a loopback port with keys on (``url``,
    ``api_key``, ``admin_key``), from a fresh working directory (its embedded examples
    keep their data in ``./ww-data``)."""
    doc = ROOT / "docs" / "sdk.md"
    code = blocks(doc)
    assert code, f"{doc} has no python examples"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in [n for n in os.environ if n.startswith("WW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WW_ENVIRONMENT", "test")
    keys = {"api_key": "docs-user-key-0123456789", "admin_key": "docs-admin-key-0123456789"}
    secrets = {name: SecretStr(value) for name, value in keys.items()}
    with serve(make_app(settings, embedding_service, **secrets)) as url:
        namespace: dict[str, object] = {"url": url, **keys}
        try:
            for i, block in enumerate(code):
                try:
                    exec(compile(block, f"{doc.name}[{i}]", "exec"), namespace)
                except Exception as exc:
                    raise AssertionError(f"example {i} of {doc.name} failed:\n{block}") from exc
        finally:
            for value in namespace.values():
                if isinstance(value, WorldWeaver):
                    value.close()


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python examples are self-contained (an embedded client on ./ww-data)."""
    code = blocks(ROOT / "README.md")
    assert code, "README.md has no python examples"
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("WW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WW_ENVIRONMENT", "test")
    namespace: dict[str, object] = {}
    for i, block in enumerate(code):
        try:
            exec(compile(block, f"README.md[{i}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"example {i} of README.md failed:\n{block}") from exc
