"""Shared fixtures: the vendored model is loaded once per test session."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ww.embedding import VENDORED_MODEL, OnnxEmbedder, vendored_model_dir


@pytest.fixture(scope="session")
def embedder() -> OnnxEmbedder:
    return OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        dst.symlink_to(src)
    except OSError:  # filesystems without symlinks
        shutil.copyfile(src, dst)


@pytest.fixture
def model_folder(tmp_path: Path) -> Callable[..., Path]:
    """Build a model folder from the vendored files: ``make(name, onnx_at=..., files=...)``.

    Only ``model.onnx`` and ``tokenizer.json`` are included unless ``files`` names more
    vendored files (e.g. ``sentence_bert_config.json``), so each test states its config.
    """

    def make(
        name: str = "local-model",
        *,
        onnx_at: str = "model.onnx",
        files: tuple[str, ...] = (),
    ) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        source = vendored_model_dir()
        _link(source / "model.onnx", folder / onnx_at)
        for file in ("tokenizer.json", *files):
            _link(source / file, folder / file)
        return folder

    return make
