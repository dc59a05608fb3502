"""LongMemEval retrieval benchmark: World Weaver against BM25, FTS5, cosine and RRF baselines.

    python bench/longmemeval.py --data PATH [--out DIR] [--preset balanced]
                                [--limit-questions N] [--http http://127.0.0.1:8765]
                                [--feedback] [--ablation] [--repeat-hours H]

Each question's haystack goes into a session of its own, one memory per user turn (batch
ingest), and the question is recalled (top 50 turns) at the question's date. Turn and
session recall_any/recall_all at 5, 10 and 50 are scored per question type, with bootstrap
intervals; sessions are ranked by their best turn. Abstention questions (``_abs``) are left
out of recall scores and measure relevance instead: AUROC of the top hit's relevance for
answerable vs abstention questions. Writes DIR/longmemeval.json and DIR/longmemeval.md.

In process, every session is stored at its own date and every question asked at its date.
``--feedback`` adds the repeated-question pass (bench/longmemeval_repeat.py): each question
is asked with ``learn``, its top 10 rated (1 for gold turns, 0 for the others), and asked
again ``--repeat-hours`` later; ``--ablation`` adds that pass with every learning mechanism
on and with each one off (``ablation.*``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `ww` importable
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

from bench.baselines import BASELINES, run_baselines  # noqa: E402
from bench.locomo_ablation import ablation_configs  # noqa: E402
from bench.locomo_ww import MemoEmbedder, PassResult, run_http_pass, run_inprocess_pass  # noqa: E402
from bench.longmemeval_data import LmeData, load_longmemeval  # noqa: E402
from bench.longmemeval_repeat import repeat_markdown, repeat_summary, score_passes  # noqa: E402
from bench.longmemeval_report import markdown_report, score_rankings, summarise  # noqa: E402
from bench.metrics import relevance_report, top_is_gold  # noqa: E402
from bench.run_info import vendored_embedder, versions  # noqa: E402
from ww.control.flags import Flags  # noqa: E402
from ww.engine import Preset  # noqa: E402
from ww.engine.relevance import DEFAULT_MIN_RELEVANCE  # noqa: E402

__all__ = ["DEFAULT_DATA", "FULL_QUESTIONS", "main", "run"]

DEFAULT_DATA = (
    ROOT / ".." / "shared" / "datasets" / "longmemeval" / "longmemeval_s_dev.json.gz"
).resolve()
DEFAULT_OUT = ROOT / "bench" / "results"
TOP_K = 50
# LongMemEval_S has 500 questions; a run on a split extrapolates its time to all of them.
FULL_QUESTIONS = 500


def _repeats(args: argparse.Namespace) -> bool:
    return bool(args.feedback or args.ablation)


def _ww_pass(
    lme: LmeData,
    embedder: MemoEmbedder,
    args: argparse.Namespace,
    *,
    feedback: bool = False,
    flags: Flags | None = None,
) -> PassResult:
    preset = Preset(args.preset)
    if args.http:
        return run_http_pass(lme.dataset, args.http, preset=preset, learn=False, k=TOP_K)
    return asyncio.run(
        run_inprocess_pass(
            lme.dataset,
            embedder,
            preset=preset,
            learn=feedback,
            candidates=args.candidates,
            k=TOP_K,
            flags=flags,
            feedback=feedback,
            repeat_after=timedelta(hours=args.repeat_hours) if _repeats(args) else None,
            dated=True,
        )
    )


def _learning_passes(
    lme: LmeData, memo: MemoEmbedder, args: argparse.Namespace
) -> dict[str, PassResult]:
    if not _repeats(args):
        return {}
    passes = {"feedback": _ww_pass(lme, memo, args, feedback=True)}
    if args.ablation:
        for name, flags in ablation_configs().items():
            passes[f"ablation.{name}"] = _ww_pass(lme, memo, args, feedback=True, flags=flags)
    return passes


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    data_path = Path(args.data).expanduser().resolve()
    lme = load_longmemeval(data_path, args.limit_questions)
    embedder = vendored_embedder()
    memo = MemoEmbedder(embedder)
    # WW runs first on a cold embedder, so its ingest time includes embedding; the
    # baselines then reuse its vectors (identical, see MemoEmbedder).
    t0 = time.perf_counter()
    ww_pass = _ww_pass(lme, memo, args)
    t1 = time.perf_counter()
    base_rankings, base_secs = run_baselines(lme.dataset, memo.embed, TOP_K)
    t2 = time.perf_counter()
    learning = _learning_passes(lme, memo, args)

    ww = {"read_only": summarise(lme, score_rankings(lme, ww_pass.rankings))}
    baselines = {b: summarise(lme, score_rankings(lme, base_rankings[b])) for b in BASELINES}
    n_questions = len(lme.dataset.conversations)
    per_question_s = (t2 - started) / max(1, n_questions)
    info: dict[str, Any] = {
        "dataset": data_path.name,
        "mode": f"http {args.http}" if args.http else "in-process",
        "preset": args.preset,
        "recall_candidates": None if args.http else args.candidates,
        "top_k": TOP_K,
        "questions": n_questions,
        "scored": len(lme.scored),
        "abstention": len(lme.abstention),
        "skipped": dict(lme.dataset.skipped),
        "turns": lme.dataset.turns,
        "model": embedder.model_id,
        "versions": versions(),
        "cpu_count": os.cpu_count(),
        "degraded_recalls": ww_pass.degraded,
        "relevance": relevance_report(
            ww_pass.top_relevance,
            [q.qid for q in lme.scored],
            sorted(lme.abstention),
            DEFAULT_MIN_RELEVANCE,
            top_is_gold(ww_pass.rankings, {q.qid: q.evidence for q in lme.scored}),
        ),
        "timings": {
            "ww_read_only": ww_pass.timings(),
            **{f"ww_{n}": r.timings() for n, r in learning.items()},
            "ww_s": round(t1 - t0, 3),
            "baselines_s": round(t2 - t1, 3),
            **{f"baseline_{k}_s": round(v, 3) for k, v in base_secs.items()},
            "total_s": round(time.perf_counter() - started, 3),
            "seconds_per_question": round(per_question_s, 3),
            f"extrapolated_{FULL_QUESTIONS}_questions_s": round(per_question_s * FULL_QUESTIONS),
        },
    }
    result: dict[str, Any] = {"ww": ww, "baselines": baselines, "info": info}
    report = markdown_report(ww, baselines, info)
    if learning:
        info["repeat_hours"] = args.repeat_hours
        passes = {"read_only": ww_pass, **learning}
        rankings = {n: {"first": r.rankings, "repeat": r.repeat} for n, r in passes.items()}
        result["repeat"] = repeat_summary(lme, score_passes(lme, rankings))
        report += "\n" + repeat_markdown(result["repeat"], args.repeat_hours)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "longmemeval.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    (out_dir / "longmemeval.md").write_text(report, "utf-8")
    return result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="file in LongMemEval's layout")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="folder for longmemeval.json/.md")
    p.add_argument("--preset", default=Preset.BALANCED.value, choices=[x.value for x in Preset])
    p.add_argument("--limit-questions", type=int, default=None, metavar="N")
    p.add_argument("--candidates", type=int, default=50, help="WW recall_candidates")
    p.add_argument("--http", default=None, metavar="URL", help="a running WW server (loopback)")
    p.add_argument(
        "--feedback",
        action="store_true",
        help="in-process: the repeated-question pass (feedback on the first ask, then again)",
    )
    p.add_argument(
        "--ablation",
        action="store_true",
        help="in-process: the repeated-question pass with all mechanisms on and each one off",
    )
    p.add_argument(
        "--repeat-hours",
        type=float,
        default=24.0,
        help="hours between a question's first ask and the second (with --feedback/--ablation)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.http and _repeats(args):
        parser.error("--feedback and --ablation run in process only, not with --http")
    result = run(args)
    headline = ("session/recall_all@5", "turn/recall_all@5")
    summary = {
        name: {m: s["all"].get(m) for m in headline}
        for name, s in {"ww": result["ww"]["read_only"], **result["baselines"]}.items()
    }
    print(json.dumps({"summary": summary, "info": result["info"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
