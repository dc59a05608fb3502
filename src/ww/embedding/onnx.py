"""Sentence embeddings with ONNX Runtime from a sentence-transformers style model folder.

The folder needs ``tokenizer.json`` and ``model.onnx`` (or ``onnx/model.onnx``); pooling comes
from ``1_Pooling/config.json`` or ``pooling_config.json``, the length limit from
``sentence_bert_config.json`` or ``tokenizer_config.json``.
"""

from __future__ import annotations

import json
import logging
import mmap
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from ww.embedding.base import EmbeddingError

__all__ = ["DEFAULT_MAX_PARTS", "DEFAULT_WINDOW_LENGTH", "OnnxEmbedder", "Pooling"]

logger = logging.getLogger(__name__)

Pooling = Literal["mean", "cls", "max"]

_MAX_LENGTH_CAP: Final = 8192
# Word pieces per window of a long text. Mean pooling dilutes one sentence among a window's
# others: a paraphrased question about a one-sentence fact at the end of 30,000 characters
# had cosine 0.07-0.20 to its 256-piece window and 0.40-0.57 to its 64-piece one, for
# about the same compute (the same word pieces, cut finer; docs/benchmarks.md).
DEFAULT_WINDOW_LENGTH: Final = 64
# Word pieces a window shares with the one before it, as a fraction of the window: a
# sentence up to this long lies whole in some window, wherever the windows fall.
_WINDOW_OVERLAP: Final = 4
# Windows after the first of one text, at most: every punctuation mark or CJK character is a
# word piece, so 32,000 characters can need ~700 windows of 64. A text that would need more
# gets wider windows (up to max_length), so all of it is still covered.
DEFAULT_MAX_PARTS: Final = 256
_DEFAULT_MAX_LENGTH: Final = 512
_DEVICE_RE: Final = re.compile(r"cpu|cuda(?::(\d+))?")
_FEEDABLE_INPUTS: Final = frozenset({"input_ids", "attention_mask", "token_type_ids"})
# Token-level outputs are preferred so the folder's pooling config is honoured; an export that
# only has a pooled output is used as is.
_PREFERRED_OUTPUTS: Final = ("last_hidden_state", "token_embeddings", "sentence_embedding")
# sentence-transformers pooling flags. mean_sqrt_len differs from mean only by a per-row
# scale, which the final L2 normalisation removes, so it is served as mean.
_POOLING_FLAGS: Final[dict[str, Pooling]] = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean",
}
# Operators that quantise activations with one scale per tensor, computed at run time. With
# them a row's output depends on the other rows and the padding in its batch. MatMulInteger
# alone is not one: the vendored graph feeds it activations quantised row by row.
_DYNAMIC_QUANT_OPS: Final = (
    b"DynamicQuantizeLinear",
    b"DynamicQuantizeMatMul",
    b"DynamicQuantizeLSTM",
)


class OnnxEmbedder:
    """An :class:`~ww.embedding.base.Embedder` backed by an ONNX Runtime session.

    ``per_text`` chooses between running each text on its own and padding texts into batches.
    ``None`` (the default) picks per-text runs for graphs that quantise activations with one
    scale per tensor computed at run time (``DynamicQuantizeLinear``, as
    ``quantize_dynamic`` writes them): batched, a text's vector there depends on its batch
    mates and padding (cosine to the unbatched vector down to about 0.95 for short texts), so
    the same text would get different vectors at ingest and as a query, or under different
    concurrent load. Other graphs are batched, which is faster; the vendored int8 model
    quantises each token's activations with that token's own scale, so it is one of them.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        model_id: str,
        device: str = "cpu",
        batch_size: int = 32,
        max_length: int | None = None,
        use_fp16: bool = False,
        per_text: bool | None = None,
        window_length: int = DEFAULT_WINDOW_LENGTH,
        max_parts: int = DEFAULT_MAX_PARTS,
    ) -> None:
        least = {"batch_size": (batch_size, 1), "window_length": (window_length, 8)}
        for name, (value, low) in {**least, "max_parts": (max_parts, 1)}.items():
            if value < low:
                raise ValueError(f"{name} must be at least {low}, got {value}")
        if max_length is not None and max_length < 2:
            raise ValueError(f"max_length must leave room for special tokens, got {max_length}")
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise EmbeddingError(f"embedding model folder {model_dir} does not exist")

        self._model_id = model_id
        self._device = device
        self._batch_size = batch_size
        self._onnx_path = _find_onnx(model_dir, use_fp16)
        self._pooling, config_dim = _read_pooling(model_dir)
        self._max_length = (
            max_length if max_length is not None else _configured_max_length(model_dir)
        )
        sbert = _read_json(model_dir / "sentence_bert_config.json") or {}
        self._lower_case = sbert.get("do_lower_case") is True
        self._tokenizer, self._pad_id = _load_tokenizer(model_dir, self._max_length)
        self._window_length = min(window_length, self._max_length)
        self._max_parts = max_parts
        # Window tokenizers by window length: the configured one, and wider ones for texts
        # that would need more than ``max_parts`` windows.
        self._windowers: dict[int, tuple[Tokenizer, int]] = {}
        self._content = self._max_length - self._tokenizer.num_special_tokens_to_add(False)
        self._session = _open_session(self._onnx_path, device)

        inputs = {i.name: i.type for i in self._session.get_inputs()}
        unknown = sorted(set(inputs) - _FEEDABLE_INPUTS)
        if "input_ids" not in inputs or unknown:
            raise EmbeddingError(
                f"{self._onnx_path} takes inputs {sorted(inputs)}; World Weaver can feed only "
                "input_ids, attention_mask and token_type_ids (export the encoder without extras)"
            )
        self._inputs = frozenset(inputs)
        self._int_dtype = np.int32 if inputs["input_ids"] == "tensor(int32)" else np.int64
        outputs = [o.name for o in self._session.get_outputs()]
        self._output = next((n for n in _PREFERRED_OUTPUTS if n in outputs), outputs[0])
        self._per_text = _quantises_activations(self._onnx_path) if per_text is None else per_text

        # The probe also proves the session runs, so a broken model fails at start-up.
        probe_dim = int(self._run([self._encode(["dimension probe"])[0]]).shape[1])
        if config_dim is not None and config_dim != probe_dim:
            raise EmbeddingError(
                f"{model_dir}: pooling config says {config_dim} dimensions but the model "
                f"produces {probe_dim}"
            )
        self._dimension = probe_dim
        logger.info(
            "embedding model %s loaded from %s on %s (%d dims, %s pooling, max %d tokens%s)",
            model_id,
            self._onnx_path,
            device,
            self._dimension,
            self._pooling,
            self._max_length,
            ", one text per run" if self._per_text else "",
        )

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_length(self) -> int:
        """Word pieces per text, special tokens included; longer texts are truncated."""
        return self._max_length

    @property
    def pooling(self) -> Pooling:
        return self._pooling

    @property
    def per_text(self) -> bool:
        """Whether texts run one at a time (see the class docstring)."""
        return self._per_text

    def __repr__(self) -> str:
        return (
            f"OnnxEmbedder(model_id={self._model_id!r}, path={str(self._onnx_path)!r}, "
            f"device={self._device!r}, dimension={self._dimension})"
        )

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a single string")
        count = len(texts)
        out = np.empty((count, self._dimension), dtype=np.float32)
        if count == 0:
            return out
        encodings = self._encode(texts)
        if self._per_text:
            groups = [[i] for i in range(count)]
        else:
            # Similar lengths share a batch so little compute is spent on padding.
            order = sorted(range(count), key=lambda i: len(encodings[i].ids))
            groups = [order[s : s + self._batch_size] for s in range(0, count, self._batch_size)]
        for group in groups:
            vectors = self._run([encodings[i] for i in group])
            if vectors.shape[1] != self._dimension:
                raise EmbeddingError(
                    f"model {self._model_id} returned {vectors.shape[1]}-dimensional vectors, "
                    f"expected {self._dimension}"
                )
            out[group] = vectors
        return out

    def windows(self, text: str) -> list[str]:
        """``[text]`` when the model sees all of it; for a longer text, the beginning the
        model sees (what :meth:`embed` gives a vector) followed by windows of
        ``window_length`` word pieces that cover the whole text in order, each sharing a
        quarter of its word pieces with the one before. Windows are substrings of
        ``text`` that start and end on whole words, so re-encoding one gives no more word
        pieces than it had here.

        At most ``max_parts`` windows follow the first: a text that would need more gets
        wider windows, up to ``max_length``; only a text that even those cannot cover is
        covered from its start as far as ``max_parts`` of them reach."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        lowered = text.lower() if self._lower_case else text
        # The offsets must index ``text``; a lowering that changes the length (rare
        # letters such as U+0130) is tokenised as written, a token more or less per window.
        source = lowered if len(lowered) == len(text) else text
        length = self._window_length
        pieces, offsets = self._pieces(source, length)
        total = len(offsets)
        if total <= self._content:
            return [text]
        seen = _whole_word_span(text, offsets[: self._content], first=True, last=False)
        while len(pieces) > self._max_parts and length < self._max_length:
            # Each window advances about three quarters of its content (the rest overlaps).
            wanted = -(-total * _WINDOW_OVERLAP // ((_WINDOW_OVERLAP - 1) * self._max_parts))
            length = min(self._max_length, max(length + max(1, length // 8), wanted + 2))
            pieces, _ = self._pieces(source, length)
        out = [text[seen[0] : seen[1]]]
        for n, piece in enumerate(pieces[: self._max_parts]):
            span = _whole_word_span(
                text, _content_offsets(piece), first=n == 0, last=n == len(pieces) - 1
            )
            out.append(text[span[0] : span[1]])
        return out

    def _windower(self, length: int) -> tuple[Tokenizer, int]:
        found = self._windowers.get(length)
        if found is None:
            found = self._windowers[length] = _windowing_tokenizer(self._tokenizer, length)
        return found

    def _pieces(self, source: str, length: int) -> tuple[list[Encoding], _Offsets]:
        """The windows of ``length`` word pieces and the text's content pieces, once each."""
        windower, stride = self._windower(length)
        first = windower.encode(source)
        pieces = [first, *first.overflowing]
        # Each window after the first repeats ``stride`` word pieces of the one before.
        offsets = [
            o for n, p in enumerate(pieces) for o in _content_offsets(p)[stride if n else 0 :]
        ]
        return pieces, offsets

    def _encode(self, texts: Sequence[str]) -> list[Encoding]:
        batch = [t.lower() for t in texts] if self._lower_case else list(texts)
        return self._tokenizer.encode_batch(batch)

    def _run(self, encodings: Sequence[Encoding]) -> npt.NDArray[np.float32]:
        # At least one position, so a tokenizer without special tokens cannot produce a
        # zero-width tensor from an empty text.
        width = max(1, *(len(e.ids) for e in encodings))
        shape = (len(encodings), width)
        ids = np.full(shape, self._pad_id, dtype=self._int_dtype)
        mask = np.zeros(shape, dtype=self._int_dtype)
        types = np.zeros(shape, dtype=self._int_dtype)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
            types[row, :n] = enc.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feeds = {k: v for k, v in feeds.items() if k in self._inputs}
        try:
            (raw,) = self._session.run([self._output], feeds)
        except Exception as exc:
            raise EmbeddingError(f"inference failed for model {self._model_id}: {exc}") from exc
        hidden = np.asarray(raw, dtype=np.float32)
        if hidden.ndim == 3:
            pooled = _pool(hidden, mask, self._pooling)
        elif hidden.ndim == 2:
            pooled = hidden
        else:
            raise EmbeddingError(
                f"output {self._output!r} of {self._onnx_path} has shape {hidden.shape}; "
                "expected token embeddings (batch, tokens, dim) or sentence embeddings (batch, dim)"
            )
        return _l2_normalise(pooled)


def _windowing_tokenizer(tokenizer: Tokenizer, length: int) -> tuple[Tokenizer, int]:
    # A copy: truncation settings are the tokenizer's state, and embed() runs on other
    # threads with the plain truncation.
    windower = Tokenizer.from_str(tokenizer.to_str())
    content = length - windower.num_special_tokens_to_add(is_pair=False)
    stride = max(0, min(length // _WINDOW_OVERLAP, content - 1))
    windower.enable_truncation(max_length=length, stride=stride)
    return windower, stride


_Offsets = list[tuple[tuple[int, int], int | None]]


def _content_offsets(piece: Encoding) -> _Offsets:
    """A window's word pieces that stand for text: character span and word number."""
    return [
        (offsets, word)
        for offsets, word, special in zip(
            piece.offsets, piece.word_ids, piece.special_tokens_mask, strict=True
        )
        if not special
    ]


def _whole_word_span(text: str, tokens: _Offsets, *, first: bool, last: bool) -> tuple[int, int]:
    """The characters of ``text`` the word pieces cover, less a word cut at either edge
    (the overlap puts that word whole in the neighbouring window)."""
    start, end = 0, len(tokens)
    if not first and _cut(text, tokens[0][0][0]):
        while start < end and tokens[start][1] == tokens[0][1]:
            start += 1
    if not last and _cut(text, tokens[-1][0][1]):
        while end > start and tokens[end - 1][1] == tokens[-1][1]:
            end -= 1
    if start >= end:  # one word longer than the window: keep the cut pieces
        start, end = 0, len(tokens)
    return tokens[start][0][0], tokens[end - 1][0][1]


def _cut(text: str, at: int) -> bool:
    # A window edge inside a word: letters or digits on both sides.
    return 0 < at < len(text) and text[at - 1].isalnum() and text[at].isalnum()


def _pool(
    hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.integer[Any]], pooling: Pooling
) -> npt.NDArray[np.float32]:
    if pooling == "cls":
        return hidden[:, 0, :]
    if pooling == "max":
        masked = hidden.copy()
        masked[~mask.astype(bool)] = np.finfo(np.float32).min
        maxed: npt.NDArray[np.float32] = masked.max(axis=1)
        return maxed
    weights = mask.astype(np.float32)[:, :, None]
    counts = np.maximum(weights.sum(axis=1), 1.0)
    mean: npt.NDArray[np.float32] = (hidden * weights).sum(axis=1) / counts
    return mean


def _l2_normalise(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmbeddingError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise EmbeddingError(f"{path} should hold a JSON object")
    return data


def _positive_int(value: object) -> int | None:
    # JSON configs use floats for "unlimited" (1e30) and bools are ints in Python.
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return int(min(value, _MAX_LENGTH_CAP))


def _find_onnx(model_dir: Path, use_fp16: bool) -> Path:
    if use_fp16:
        for candidate in (model_dir / "model_fp16.onnx", model_dir / "onnx" / "model_fp16.onnx"):
            if candidate.is_file():
                return candidate
        logger.warning(
            "fp16 requested but %s has no model_fp16.onnx; using the full-precision model",
            model_dir,
        )
    for candidate in (model_dir / "model.onnx", model_dir / "onnx" / "model.onnx"):
        if candidate.is_file():
            return candidate
    raise EmbeddingError(
        f"no ONNX model in {model_dir}: expected model.onnx or onnx/model.onnx "
        "(export one with `optimum-cli export onnx --model <id> <folder>`)"
    )


def _read_pooling(model_dir: Path) -> tuple[Pooling, int | None]:
    # 1_Pooling/ is where sentence-transformers itself keeps it, so it wins over the flat
    # file used by the vendored folder.
    for path in (model_dir / "1_Pooling" / "config.json", model_dir / "pooling_config.json"):
        config = _read_json(path)
        if config is None:
            continue
        enabled = sorted(k for k, v in config.items() if k.startswith("pooling_mode_") and v)
        modes = {_POOLING_FLAGS.get(k) for k in enabled}
        if len(enabled) != 1 or None in modes:
            raise EmbeddingError(
                f"{path} enables pooling {enabled or 'none'}; supported: exactly one of "
                "pooling_mode_mean_tokens, pooling_mode_cls_token, pooling_mode_max_tokens"
            )
        return _POOLING_FLAGS[enabled[0]], _positive_int(config.get("word_embedding_dimension"))
    return "mean", None


def _configured_max_length(model_dir: Path) -> int:
    sbert = _read_json(model_dir / "sentence_bert_config.json") or {}
    from_sbert = _positive_int(sbert.get("max_seq_length"))
    if from_sbert is not None:
        return from_sbert
    tok_config = _read_json(model_dir / "tokenizer_config.json") or {}
    from_tokenizer = _positive_int(tok_config.get("model_max_length"))
    return from_tokenizer if from_tokenizer is not None else _DEFAULT_MAX_LENGTH


def _load_tokenizer(model_dir: Path, max_length: int) -> tuple[Tokenizer, int]:
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise EmbeddingError(f"{model_dir} has no tokenizer.json (the fast-tokenizer file)")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise EmbeddingError(f"cannot load {path}: {exc}") from exc
    padding = tokenizer.padding
    pad_id = int(padding["pad_id"]) if padding else (tokenizer.token_to_id("[PAD]") or 0)
    # Exported tokenizer.json files often carry fixed-length padding and the exporter's
    # truncation; both are replaced so batches pad to their longest text and the configured
    # limit applies. Padding itself is done in _run, after texts are grouped.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer, pad_id


def _providers(device: str) -> list[str | tuple[str, dict[str, Any]]]:
    match = _DEVICE_RE.fullmatch(device)
    if match is None:
        raise EmbeddingError(
            f"WW_EMBEDDING_DEVICE={device!r} is not supported: use cpu, cuda or cuda:N"
        )
    if device == "cpu":
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise EmbeddingError(
            f"WW_EMBEDDING_DEVICE={device} needs ONNX Runtime's CUDA provider, but this "
            f"installation only has {', '.join(available)}; install world-weaver[gpu] "
            "(onnxruntime-gpu, in place of onnxruntime) or set WW_EMBEDDING_DEVICE=cpu"
        )
    # CPU stays listed so operators without a CUDA kernel still run.
    return [
        ("CUDAExecutionProvider", {"device_id": int(match.group(1) or 0)}),
        "CPUExecutionProvider",
    ]


def _open_session(path: Path, device: str) -> ort.InferenceSession:
    providers = _providers(device)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ORT's idle intra-op threads spin for work by default. Here they share two or a few
    # cores with the keyword search, the vector index and the event loop, which a recall
    # runs while the query is embedded: without spinning a recall at 20k memories took
    # 34 ms instead of 42 ms in process (p50), though one embedding alone took 5.2 ms
    # instead of 4.5 ms.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # On x86 CPUs without VNNI, ORT's u8 x s8 integer products saturate pairwise sums at 16
    # bits by default, so the same int8 model gives other vectors there than on a VNNI CPU
    # (LoCoMo recall@10 moved by 0.012 between two machines). Exact products keep a data
    # directory's vectors, and benchmark figures, the same on every CPU.
    options.add_session_config_entry("session.x64quantprecision", "1")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:
        raise EmbeddingError(f"ONNX Runtime cannot load {path}: {exc}") from exc
    # ORT falls back to CPU silently when the CUDA libraries fail to load; running a
    # "GPU" deployment on CPU unnoticed is worse than failing.
    if device != "cpu" and "CUDAExecutionProvider" not in session.get_providers():
        raise EmbeddingError(
            f"WW_EMBEDDING_DEVICE={device}: ONNX Runtime could not start its CUDA provider "
            "(check the CUDA and cuDNN libraries it needs) - or set WW_EMBEDDING_DEVICE=cpu"
        )
    return session


def _quantises_activations(path: Path) -> bool:
    # Operator names are stored as plain strings in the protobuf, so a byte search finds
    # them without depending on the onnx package. External weights live in other files.
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return any(data.find(op) != -1 for op in _DYNAMIC_QUANT_OPS)
