"""What the retrieval benches share around a run: the embedder and the versions they report."""

from __future__ import annotations

import platform
import sqlite3
from importlib import metadata
from pathlib import Path

from ww.config import Settings
from ww.embedding import VENDORED_MODEL, OnnxEmbedder, vendored_model_dir

__all__ = ["vendored_embedder", "versions"]

_DISTS = ("world-weaver", "onnxruntime", "numpy", "rank-bm25", "qdrant-edge-py", "tokenizers")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    out = {d: _version(d) for d in _DISTS}
    out["python"] = platform.python_version()
    out["sqlite"] = sqlite3.sqlite_version
    out["cpu"] = _cpu()
    return out


def _cpu() -> str:
    """The CPU model and whether it has VNNI: int8 embeddings were CPU-dependent before the
    embedder asked ORT for exact integer products, so a figure says where it was measured."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")),
        "unknown",
    )
    vnni = "vnni" if "vnni" in text else "no vnni"
    return f"{model} ({vnni})"


def vendored_embedder() -> OnnxEmbedder:
    """The service's own vendored model, batched as the service batches it."""
    settings = Settings()
    return OnnxEmbedder(
        vendored_model_dir(), model_id=VENDORED_MODEL, batch_size=settings.embedding_batch_size
    )
