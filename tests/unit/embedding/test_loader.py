"""Model resolution and settings-driven loading. Nothing here touches the network."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ww.config import Settings
from ww.embedding import (
    VENDORED_MODEL,
    EmbeddingError,
    OnnxEmbedder,
    load_embedder,
    resolve_model_dir,
    vendored_model_dir,
)

MakeFolder = Callable[..., Path]
FAKE_HUB_ID = "ww-tests/no-such-model-for-world-weaver"


def _settings(**overrides: Any) -> Settings:
    # Every embedding field is explicit so WW_* variables in the environment cannot leak in.
    values: dict[str, Any] = {
        "embedding_model": VENDORED_MODEL,
        "embedding_dimension": 384,
        "embedding_device": "cpu",
        "embedding_batch_size": 32,
        "embedding_cache_size": 1000,
        "embedding_use_fp16": False,
        "embedding_max_length": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Force huggingface_hub offline with an empty cache, however early it was imported."""
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))


def test_vendored_folder_is_complete() -> None:
    folder = vendored_model_dir()
    assert folder.name == VENDORED_MODEL
    for name in (
        "model.onnx",
        "tokenizer.json",
        "pooling_config.json",
        "sentence_bert_config.json",
    ):
        assert (folder / name).is_file(), name
    assert resolve_model_dir(VENDORED_MODEL) == folder


def test_local_folder_resolves_to_itself(model_folder: MakeFolder) -> None:
    folder = model_folder("my-model")
    assert resolve_model_dir(str(folder)) == folder.resolve()


def test_missing_local_folder_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match=r"WW_EMBEDDING_MODEL=.*no such folder"):
        resolve_model_dir(str(tmp_path / "absent"))


def test_garbage_name_is_refused() -> None:
    with pytest.raises(EmbeddingError, match="WW_EMBEDDING_MODEL"):
        resolve_model_dir("not a model id!")


@pytest.mark.usefixtures("offline_hub")
def test_hub_id_offline_gives_actionable_error() -> None:
    with pytest.raises(EmbeddingError) as info:
        resolve_model_dir(FAKE_HUB_ID)
    message = str(info.value)
    assert "WW_EMBEDDING_MODEL" in message
    assert FAKE_HUB_ID in message
    assert "local folder" in message


def test_hub_id_without_huggingface_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(EmbeddingError, match=r"world-weaver\[hub\].*WW_EMBEDDING_MODEL"):
        resolve_model_dir(FAKE_HUB_ID)


def test_load_default_settings(embedder: OnnxEmbedder) -> None:
    loaded = load_embedder(_settings())
    assert loaded.model_id == VENDORED_MODEL
    assert loaded.dimension == 384
    assert loaded.max_length == 256
    np.testing.assert_allclose(loaded.embed(["hello"]), embedder.embed(["hello"]), atol=1e-6)


def test_load_local_folder_uses_folder_name_and_max_length(model_folder: MakeFolder) -> None:
    folder = model_folder("minilm-copy", files=("pooling_config.json",))
    loaded = load_embedder(_settings(embedding_model=str(folder), embedding_max_length=64))
    assert loaded.model_id == "minilm-copy"
    assert loaded.max_length == 64


def test_the_window_length_setting_reaches_the_embedder() -> None:
    text = " ".join(["harbour crane"] * 400)
    fine = load_embedder(_settings(embedding_window_length=32)).windows(text)
    default = load_embedder(_settings()).windows(text)
    assert fine[0] == default[0]  # the beginning the model sees is the same
    assert len(fine) > 1.5 * len(default)


def test_the_max_parts_setting_reaches_the_embedder() -> None:
    text = " ".join(["harbour crane"] * 400)
    assert len(load_embedder(_settings()).windows(text)) - 1 > 4
    assert len(load_embedder(_settings(embedding_max_parts=4)).windows(text)) - 1 <= 4


def test_dimension_mismatch_names_the_setting() -> None:
    with pytest.raises(EmbeddingError) as info:
        load_embedder(_settings(embedding_dimension=768))
    message = str(info.value)
    assert "WW_EMBEDDING_DIMENSION=768" in message
    assert VENDORED_MODEL in message
    assert "384" in message


@pytest.mark.usefixtures("offline_hub")
def test_load_embedder_with_unreachable_hub_model() -> None:
    with pytest.raises(EmbeddingError, match="WW_EMBEDDING_MODEL"):
        load_embedder(_settings(embedding_model=FAKE_HUB_ID))
