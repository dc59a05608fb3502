"""``embedded`` on a data directory of its own, and what importing the SDK costs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ww.config import Settings
from ww.sdk import AsyncWorldWeaver, WorldWeaver

# The server's dependencies: none of them may load with ``import ww`` or the SDK.
SERVER_MODULES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "onnxruntime",
    "tokenizers",
    "qdrant_edge",
    "qdrant_client",
    "neo4j",
    "numpy",
    "sklearn",
    "ww.api",
    "ww.engine",
    "ww.storage",
)


def test_importing_the_sdk_loads_none_of_the_server() -> None:
    code = (
        "import sys\n"
        "import ww\n"
        "assert 'ww.sdk' not in sys.modules, 'import ww loaded the SDK eagerly'\n"
        "from ww import AsyncWorldWeaver, WorldWeaver\n"
        "import ww.sdk, ww.sdk.resources\n"
        f"print(' '.join(m for m in {SERVER_MODULES!r} if m in sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert run.stdout.strip() == ""


def _settings(data_dir: Path) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, environment="test")  # type: ignore[call-arg]


def test_an_embedded_client_closes_its_engine_and_a_new_one_finds_the_memory(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with WorldWeaver.embedded(data, settings=_settings(data), session_id="nb") as ww:
        stored = ww.episodes.create(content="notebooks remember too")
    # The stores are closed (locks released, files flushed): a second engine opens them.
    with WorldWeaver.embedded(settings=_settings(data), session_id="nb") as again:
        assert again.episodes.get(stored.id).content == stored.content
        assert [h.episode.id for h in again.episodes.recall("notebooks").hits] == [stored.id]


async def test_an_async_embedded_client_on_a_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with AsyncWorldWeaver.embedded(data, settings=_settings(data)) as ww:
        stored = await ww.episodes.create(content="async notebooks")
        assert (await ww.health()).status == "ok"
    async with AsyncWorldWeaver.embedded(settings=_settings(data)) as again:
        assert (await again.episodes.get(stored.id)).content == stored.content
