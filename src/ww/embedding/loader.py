"""Find the embedding model named by ``WW_EMBEDDING_MODEL`` and build its embedder."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Final

from ww.config import Settings
from ww.embedding.base import EmbeddingError
from ww.embedding.onnx import OnnxEmbedder

__all__ = ["VENDORED_MODEL", "load_embedder", "resolve_model_dir", "vendored_model_dir"]

logger = logging.getLogger(__name__)

VENDORED_MODEL: Final = "all-MiniLM-L6-v2-int8"

# "name" or "owner/name", the shapes the Hugging Face Hub accepts for model ids.
_HUB_ID_RE: Final = re.compile(r"[A-Za-z0-9][\w.\-]*(?:/[A-Za-z0-9][\w.\-]*)?")
# Only what OnnxEmbedder reads: a hub repo may also hold several GB of PyTorch, TF and
# alternative ONNX weights. "*" matches across folders, so *.json covers 1_Pooling/ too.
_HUB_PATTERNS: Final = (
    "*.json",
    "1_Pooling/*",
    "model.onnx",
    "model.onnx_data",
    "onnx/model.onnx",
    "onnx/model.onnx_data",
)
_HUB_FP16_PATTERNS: Final = (
    "model_fp16.onnx",
    "model_fp16.onnx_data",
    "onnx/model_fp16.onnx",
    "onnx/model_fp16.onnx_data",
)


def vendored_model_dir() -> Path:
    """The folder of the model shipped inside the package."""
    return Path(__file__).resolve().parent / "models" / VENDORED_MODEL


def resolve_model_dir(name: str, *, use_fp16: bool = False) -> Path:
    """Map a ``WW_EMBEDDING_MODEL`` value to a local model folder.

    ``name`` is the vendored model's name, a local folder, or a Hugging Face Hub id, which
    is downloaded into the Hub cache (``use_fp16`` also fetches fp16 weights if present).
    """
    if name == VENDORED_MODEL:
        folder = vendored_model_dir()
        if not (folder / "model.onnx").is_file():
            raise EmbeddingError(
                f"the vendored model is missing from {folder}; reinstall world-weaver"
            )
        return folder
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    if _looks_like_path(name):
        raise EmbeddingError(
            f"WW_EMBEDDING_MODEL={name!r}: no such folder; give a folder holding model.onnx "
            f"and tokenizer.json, a Hugging Face model id, or {VENDORED_MODEL!r}"
        )
    if _HUB_ID_RE.fullmatch(name) is None:
        raise EmbeddingError(
            f"WW_EMBEDDING_MODEL={name!r} is neither {VENDORED_MODEL!r}, an existing folder, "
            "nor a Hugging Face model id such as 'BAAI/bge-m3'"
        )
    return _download(name, use_fp16)


def load_embedder(settings: Settings) -> OnnxEmbedder:
    """Build the embedder the settings describe and check it matches the vector store."""
    name = settings.embedding_model
    folder = resolve_model_dir(name, use_fp16=settings.embedding_use_fp16)
    embedder = OnnxEmbedder(
        folder,
        model_id=_model_id(name, folder),
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
        max_length=settings.embedding_max_length,
        use_fp16=settings.embedding_use_fp16,
        window_length=settings.embedding_window_length,
        max_parts=settings.embedding_max_parts,
    )
    if embedder.dimension != settings.embedding_dimension:
        raise EmbeddingError(
            f"WW_EMBEDDING_DIMENSION={settings.embedding_dimension} but model "
            f"{embedder.model_id!r} produces {embedder.dimension}-dimensional vectors; set "
            f"WW_EMBEDDING_DIMENSION={embedder.dimension} (vectors already stored with another "
            "model must be re-embedded)"
        )
    return embedder


def _looks_like_path(name: str) -> bool:
    # Hub ids have at most one slash and never start with a path marker.
    return (
        Path(name).is_absolute()
        or name.startswith((".", "~"))
        or name.count("/") > 1
        or "\\" in name
    )


def _model_id(name: str, folder: Path) -> str:
    if name == VENDORED_MODEL:
        return VENDORED_MODEL
    if Path(name).expanduser().is_dir():
        return folder.name
    return name


def _download(repo_id: str, use_fp16: bool) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise EmbeddingError(
            f"WW_EMBEDDING_MODEL={repo_id!r} is a Hugging Face model id and needs the "
            "extra world-weaver[hub] (huggingface_hub not installed): "
            'pip install -e ".[api,hub]"; or download the model and set WW_EMBEDDING_MODEL to '
            "its local folder"
        ) from None
    patterns = [*_HUB_PATTERNS, *(_HUB_FP16_PATTERNS if use_fp16 else ())]
    logger.info("fetching embedding model %s from the Hugging Face Hub", repo_id)
    try:
        local = snapshot_download(repo_id=repo_id, allow_patterns=patterns)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).rstrip('.')}"
        raise EmbeddingError(
            f"WW_EMBEDDING_MODEL={repo_id!r}: could not fetch it from the Hugging Face Hub "
            f"({reason}). Offline or behind a firewall? Download the model elsewhere "
            "and set WW_EMBEDDING_MODEL to a local folder holding model.onnx (or "
            "onnx/model.onnx) and tokenizer.json"
        ) from exc
    if not isinstance(local, str):
        raise EmbeddingError(f"unexpected answer from huggingface_hub for {repo_id!r}")
    return Path(local)
