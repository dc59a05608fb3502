"""OnnxEmbedder against the real vendored model."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from ww.embedding import (
    VENDORED_MODEL,
    Embedder,
    EmbeddingError,
    OnnxEmbedder,
    vendored_model_dir,
)

MakeFolder = Callable[..., Path]

# Lengths vary a lot on purpose, so batching has to pad and sort.
TEXTS = [
    "hi",
    "The quick brown fox jumps over the lazy dog near the river bank on a sunny afternoon.",
    "Quantum chromodynamics describes the strong interaction between quarks and gluons.",
    "ok",
    "My sister moved to Lisbon last spring and now works as a nurse at a children's hospital.",
    "Remember to buy milk.",
    "",
    "A short note.",
    "Paris is the capital of France, and it hosts the Louvre, the largest art museum.",
]


@pytest.fixture(scope="module")
def batched_embedder() -> OnnxEmbedder:
    # Small batches, so the sort-and-restore path runs across several padded runs.
    return OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL, batch_size=4, per_text=False)


def _one_by_one(embedder: OnnxEmbedder, texts: list[str]) -> npt.NDArray[np.float32]:
    return np.vstack([embedder.embed([t]) for t in texts])


def test_satisfies_the_embedder_protocol(embedder: OnnxEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.model_id == VENDORED_MODEL
    assert embedder.dimension == 384
    assert embedder.pooling == "mean"


def test_shape_dtype_and_unit_norm(embedder: OnnxEmbedder) -> None:
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_empty_matrix(embedder: OnnxEmbedder) -> None:
    vectors = embedder.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_single_string_is_rejected(embedder: OnnxEmbedder) -> None:
    with pytest.raises(TypeError, match="single string"):
        embedder.embed("not a list")


def test_similar_sentences_score_higher_than_unrelated(embedder: OnnxEmbedder) -> None:
    anchor, paraphrase, unrelated = embedder.embed(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The stock market fell sharply after the earnings report.",
        ]
    )
    assert float(anchor @ paraphrase) > 0.6
    assert float(anchor @ paraphrase) > float(anchor @ unrelated) + 0.3

    query, right, wrong = embedder.embed(
        [
            "Where does my sister live now?",
            "My sister moved to Lisbon last spring.",
            "The printer on the third floor is out of toner.",
        ]
    )
    assert float(query @ right) > float(query @ wrong)


def test_batch_equals_one_by_one(embedder: OnnxEmbedder) -> None:
    texts = TEXTS * 5  # several batches' worth
    np.testing.assert_allclose(embedder.embed(texts), _one_by_one(embedder, texts), atol=1e-5)


def test_vendored_model_is_batched(embedder: OnnxEmbedder) -> None:
    # Its activations are quantised per token, so nothing forces one text per run.
    assert embedder.per_text is False


def test_vector_does_not_depend_on_batch_mates(embedder: OnnxEmbedder) -> None:
    mates = [
        "word " * 200,
        "x",
        "A medium-length sentence about the garden shed and the leaking roof in March.",
    ]
    alone = _one_by_one(embedder, TEXTS)
    for extra in ([], mates, mates * 11):  # one batch, then several padded ones
        batched = embedder.embed([*extra, *TEXTS, *reversed(extra)])[len(extra) :][: len(TEXTS)]
        cosine = np.sum(alone * batched, axis=1)
        assert float(cosine.min()) >= 0.9999, cosine


def test_batched_path_restores_order(
    embedder: OnnxEmbedder, batched_embedder: OnnxEmbedder
) -> None:
    texts = TEXTS * 3
    batched = batched_embedder.embed(texts)
    np.testing.assert_allclose(batched, _one_by_one(embedder, texts), atol=1e-5)


def test_long_text_is_truncated(embedder: OnnxEmbedder) -> None:
    long_text = "The committee met on Tuesday to review the annual budget. " * 150
    vectors = embedder.embed([long_text, long_text + " But the ending is about volcanoes."])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Everything past 256 word pieces is cut, so a different ending changes nothing.
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)


def test_vendored_max_length_is_256_from_config(embedder: OnnxEmbedder) -> None:
    assert embedder.max_length == 256
    assert json.loads((vendored_model_dir() / "sentence_bert_config.json").read_text()) == {
        "max_seq_length": 256,
        "do_lower_case": False,
    }
    # Token 252 is read (the tokenizer.json default of 128 would drop it); token 302 is not.
    inside = embedder.embed(["the " * 250 + "apple", "the " * 250 + "volcano"])
    outside = embedder.embed(["the " * 300 + "apple", "the " * 300 + "volcano"])
    assert float(inside[0] @ inside[1]) < 0.9999
    np.testing.assert_allclose(outside[0], outside[1], atol=1e-6)


@pytest.mark.parametrize(
    ("configs", "explicit", "expected"),
    [
        ({"sentence_bert_config.json": {"max_seq_length": 128}}, None, 128),
        ({"sentence_bert_config.json": {"max_seq_length": 128}}, 64, 64),
        ({"tokenizer_config.json": {"model_max_length": 300}}, None, 300),
        ({"tokenizer_config.json": {"model_max_length": 1e30}}, None, 8192),
        ({}, None, 512),
    ],
)
def test_max_length_resolution(
    model_folder: MakeFolder, configs: dict[str, object], explicit: int | None, expected: int
) -> None:
    folder = model_folder()
    for name, content in configs.items():
        (folder / name).write_text(json.dumps(content))
    embedder = OnnxEmbedder(folder, model_id="m", max_length=explicit)
    assert embedder.max_length == expected


def _reference(texts: list[str], pooling: str) -> npt.NDArray[np.float32]:
    """Pool the raw encoder output with plain ONNX Runtime, independently of OnnxEmbedder."""
    folder = vendored_model_dir()
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=256)
    rows = []
    for text in texts:
        encoding = tokenizer.encode(text)
        ids = np.array([encoding.ids], dtype=np.int64)
        feeds = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids),
        }
        hidden = session.run(["last_hidden_state"], feeds)[0][0]
        vector = hidden[0] if pooling == "cls" else hidden.max(axis=0)
        rows.append(vector / np.linalg.norm(vector))
    return np.vstack(rows).astype(np.float32)


@pytest.mark.parametrize("pooling", ["cls", "max"])
def test_pooling_from_1_pooling_config(model_folder: MakeFolder, pooling: str) -> None:
    folder = model_folder(files=("sentence_bert_config.json",))
    flags = {
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 384, **flags})
    )
    embedder = OnnxEmbedder(folder, model_id="pooled")
    assert embedder.pooling == pooling
    texts = [t for t in TEXTS if t]
    np.testing.assert_allclose(embedder.embed(texts), _reference(texts, pooling), atol=1e-5)


def test_1_pooling_wins_over_flat_pooling_config(model_folder: MakeFolder) -> None:
    folder = model_folder(files=("pooling_config.json",))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert OnnxEmbedder(folder, model_id="m").pooling == "cls"


def test_unsupported_pooling_is_refused(model_folder: MakeFolder) -> None:
    folder = model_folder()
    (folder / "pooling_config.json").write_text(
        json.dumps({"pooling_mode_weightedmean_tokens": True})
    )
    with pytest.raises(EmbeddingError, match="pooling"):
        OnnxEmbedder(folder, model_id="m")


def test_configured_dimension_must_match_model(model_folder: MakeFolder) -> None:
    folder = model_folder()
    (folder / "pooling_config.json").write_text(
        json.dumps({"word_embedding_dimension": 768, "pooling_mode_mean_tokens": True})
    )
    with pytest.raises(EmbeddingError, match="768 dimensions but the model produces 384"):
        OnnxEmbedder(folder, model_id="m")


def test_model_in_onnx_subfolder(model_folder: MakeFolder, embedder: OnnxEmbedder) -> None:
    folder = model_folder(onnx_at="onnx/model.onnx", files=("sentence_bert_config.json",))
    local = OnnxEmbedder(folder, model_id="sub")
    np.testing.assert_allclose(local.embed(TEXTS), embedder.embed(TEXTS), atol=1e-6)


def test_missing_onnx_file(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match=r"model\.onnx or onnx/model\.onnx"):
        OnnxEmbedder(tmp_path, model_id="empty")


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="does not exist"):
        OnnxEmbedder(tmp_path / "nope", model_id="nope")


def test_fp16_without_fp16_file_warns_and_falls_back(
    model_folder: MakeFolder, caplog: pytest.LogCaptureFixture
) -> None:
    folder = model_folder(files=("sentence_bert_config.json", "pooling_config.json"))
    with caplog.at_level(logging.WARNING, logger="ww.embedding.onnx"):
        embedder = OnnxEmbedder(folder, model_id="m", use_fp16=True)
    assert "model_fp16.onnx" in caplog.text
    assert embedder.dimension == 384


def test_cuda_without_cuda_provider_gives_clear_error() -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider; the error path cannot occur")
    for device in ("cuda", "cuda:1"):
        with pytest.raises(EmbeddingError) as info:
            OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL, device=device)
        assert "world-weaver[gpu]" in str(info.value)
        assert "WW_EMBEDDING_DEVICE=cpu" in str(info.value)


def test_unknown_device_is_refused() -> None:
    with pytest.raises(EmbeddingError, match="cpu, cuda or cuda:N"):
        OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL, device="tpu")


def test_concurrent_threads_get_consistent_results(embedder: OnnxEmbedder) -> None:
    expected = embedder.embed(TEXTS)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: embedder.embed(TEXTS), range(8)))
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-6)


def test_integer_products_are_exact_on_every_cpu(embedder: OnnxEmbedder) -> None:
    # Without it a CPU lacking VNNI saturates u8 x s8 sums and gives other vectors.
    options = embedder._session.get_session_options()
    assert options.get_session_config_entry("session.x64quantprecision") == "1"
