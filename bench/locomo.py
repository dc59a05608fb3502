"""LoCoMo retrieval benchmark: World Weaver against BM25, FTS5, cosine and RRF baselines.

    python bench/locomo.py [--data PATH] [--out DIR] [--preset balanced]
                           [--limit-conversations N] [--http http://127.0.0.1:8765]
                           [--ablation] [--repeat-hours H]

Each conversation goes into its own session, one episode per turn; every question of
categories 1-4 with valid evidence is recalled (top 50) in its conversation's session and
scored on the evidence turns it returns. Writes DIR/locomo.json and DIR/locomo.md and
prints the JSON summary.

In-process, a simulated-feedback pass (``feedback``: reward 1 for top-10 hits that are
evidence, 0 for the others, as questions stream in) runs after the learning pass;
``--ablation`` adds that pass with every learning mechanism on and with each one off in
turn (``ablation.*``). ``later_half`` holds recall on each conversation's later questions.
``--repeat-hours H`` adds ``feedback.repeat``: the feedback pass with each question asked a
second time H hours after its feedback, scored on the second asks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `ww` importable
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

from bench.baselines import BASELINES, run_baselines  # noqa: E402
from bench.locomo_ablation import (  # noqa: E402
    ablation_configs,
    ablation_markdown,
    later_half,
    later_half_ids,
    paired_delta,
)
from bench.locomo_data import Dataset, load_locomo  # noqa: E402
from bench.locomo_report import markdown_report, per_question  # noqa: E402
from bench.locomo_ww import (  # noqa: E402
    MemoEmbedder,
    PassResult,
    run_http_pass,
    run_inprocess_pass,
)
from bench.metrics import (  # noqa: E402
    GROUPS,
    QuestionScore,
    aggregate,
    relevance_report,
    top_is_gold,
)
from bench.run_info import vendored_embedder, versions  # noqa: E402
from ww.control.flags import Flags  # noqa: E402
from ww.engine import Preset  # noqa: E402
from ww.engine.relevance import DEFAULT_MIN_RELEVANCE  # noqa: E402

__all__ = ["DEFAULT_DATA", "main", "run"]

DEFAULT_DATA = (ROOT / ".." / "shared" / "datasets" / "locomo" / "locomo_public.json").resolve()
DEFAULT_OUT = ROOT / "bench" / "results"
TOP_K = 50


def _ww_pass(
    data: Dataset,
    embedder: MemoEmbedder,
    args: argparse.Namespace,
    learn: bool,
    *,
    flags: Flags | None = None,
    feedback: bool = False,
    repeat_after: timedelta | None = None,
) -> PassResult:
    preset = Preset(args.preset)
    if args.http:
        return run_http_pass(data, args.http, preset=preset, learn=learn, k=TOP_K)
    return asyncio.run(
        run_inprocess_pass(
            data,
            embedder,
            preset=preset,
            learn=learn,
            candidates=args.candidates,
            k=TOP_K,
            clock_step=timedelta(hours=args.clock_step_hours),
            flags=flags,
            feedback=feedback,
            repeat_after=repeat_after,
        )
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    data_path = Path(args.data).expanduser().resolve()
    data = load_locomo(data_path, args.limit_conversations)
    embedder = vendored_embedder()
    memo = MemoEmbedder(embedder)
    passes: dict[str, PassResult] = {}
    # read_only runs first on a cold embedder, so its ingest rate includes embedding; the
    # baselines and the learning pass then reuse the vectors (identical, see MemoEmbedder).
    passes["read_only"] = _ww_pass(data, memo, args, learn=False)
    t0 = time.perf_counter()
    base_rankings, base_secs = run_baselines(data, memo.embed, TOP_K)
    t1 = time.perf_counter()
    passes["learning"] = _ww_pass(data, memo, args, learn=True)
    if not args.http:
        passes["feedback"] = _ww_pass(data, memo, args, learn=True, feedback=True)
        if args.repeat_hours is not None:
            gap = timedelta(hours=args.repeat_hours)
            res = _ww_pass(data, memo, args, learn=True, feedback=True, repeat_after=gap)
            passes["feedback.repeat"] = replace(res, rankings=res.repeat)
        if args.ablation:
            for name, flags in ablation_configs().items():
                passes[f"ablation.{name}"] = _ww_pass(
                    data, memo, args, learn=True, flags=flags, feedback=True
                )

    scores: dict[str, list[QuestionScore]] = {}
    for name, res in passes.items():
        scores[f"ww.{name}"] = per_question(data, res.rankings)
    for name in BASELINES:
        scores[name] = per_question(data, base_rankings[name])
    ww = {name: aggregate(scores[f"ww.{name}"]) for name in passes}
    late_ids = later_half_ids(data)
    late = {name: later_half(scores[f"ww.{name}"], late_ids) for name in passes}
    baselines = {name: aggregate(scores[name]) for name in BASELINES}
    reference = scores["ww.read_only"]
    deltas = {
        name: {
            "all": paired_delta(scores[f"ww.{name}"], reference),
            "later_half": paired_delta(scores[f"ww.{name}"], reference, late_ids),
        }
        for name in passes
    }

    first = passes["read_only"]
    questions: dict[str, int] = {g: int(ww["read_only"][g]["n"]) for g in GROUPS}
    info: dict[str, Any] = {
        "dataset": data_path.name,
        "mode": f"http {args.http}" if args.http else "in-process",
        "preset": args.preset,
        "recall_candidates": None if args.http else args.candidates,
        "clock_step_hours": None if args.http else args.clock_step_hours,
        "top_k": TOP_K,
        "conversations": len(data.conversations),
        "turns": data.turns,
        "questions": questions,
        "skipped": dict(data.skipped),
        "evidence_repaired": data.repaired_ids,
        "evidence_dropped": data.dropped_ids,
        "untimed_sessions": data.untimed_sessions,
        "model": embedder.model_id,
        "versions": versions(),
        "cpu_count": os.cpu_count(),
        "ingest_turns_per_s": round(first.ingest_rate, 1),
        "embedding_reuse": "baselines and the learning pass reuse read_only's vectors",
        "degraded_recalls": {n: r.degraded for n, r in passes.items()},
        # In process only: the HTTP pass does not ask the unanswerable questions.
        "relevance": relevance_report(
            first.top_relevance,
            [q.qid for q in data.questions],
            [q.qid for c in data.conversations for q in c.unanswerable],
            DEFAULT_MIN_RELEVANCE,
            top_is_gold(first.rankings, {q.qid: q.evidence for q in data.questions}),
        ),
        "timings": {
            "baselines_s": round(t1 - t0, 3),
            **{f"baseline_{k}_s": round(v, 3) for k, v in base_secs.items()},
            **{f"ww_{n}": r.timings() for n, r in passes.items()},
            "total_s": round(time.perf_counter() - started, 3),
        },
    }
    result = {
        "ww": ww,
        "baselines": baselines,
        "later_half": late,
        "vs_read_only": deltas,
        "info": info,
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "locomo.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    report = (
        markdown_report(ww, baselines, scores, info) + "\n" + ablation_markdown(ww, late, deltas)
    )
    (out_dir / "locomo.md").write_text(report, encoding="utf-8")
    return result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="file in LoCoMo's layout")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="folder for locomo.json/.md")
    p.add_argument("--preset", default=Preset.BALANCED.value, choices=[x.value for x in Preset])
    p.add_argument("--limit-conversations", type=int, default=None, metavar="N")
    p.add_argument("--candidates", type=int, default=50, help="WW recall_candidates")
    p.add_argument("--http", default=None, metavar="URL", help="a running WW server (loopback)")
    p.add_argument(
        "--clock-step-hours",
        type=float,
        default=24.0,
        help="in-process: simulated hours between questions, so memories fade and reviews count",
    )
    p.add_argument(
        "--ablation",
        action="store_true",
        help="in-process: simulated-feedback passes with all mechanisms on and each one off",
    )
    p.add_argument(
        "--repeat-hours",
        type=float,
        default=None,
        metavar="H",
        help="in-process: also the feedback pass with each question asked again H hours later",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result = run(args)
    summary = {
        "ww": {p: {g: s[g].get("recall@10") for g in GROUPS} for p, s in result["ww"].items()},
        "baselines": {
            b: {g: s[g].get("recall@10") for g in GROUPS} for b, s in result["baselines"].items()
        },
        "later_half": {p: s["all"].get("recall@10") for p, s in result["later_half"].items()},
    }
    print(json.dumps({"recall@10": summary, **result}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
