"""Text embeddings: the Embedder contract, the ONNX Runtime embedder and the async service."""

from ww.embedding.base import Embedder, EmbeddingError, Windowed
from ww.embedding.loader import VENDORED_MODEL, load_embedder, resolve_model_dir, vendored_model_dir
from ww.embedding.onnx import OnnxEmbedder, Pooling
from ww.embedding.service import EmbeddingService, EmbeddingStats

__all__ = [
    "VENDORED_MODEL",
    "Embedder",
    "EmbeddingError",
    "EmbeddingService",
    "EmbeddingStats",
    "OnnxEmbedder",
    "Pooling",
    "Windowed",
    "load_embedder",
    "resolve_model_dir",
    "vendored_model_dir",
]
