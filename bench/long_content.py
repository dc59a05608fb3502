"""What long memories cost to ingest, and whether meaning finds a fact at their end (issue 17).

    python bench/long_content.py [--long 20] [--chars 30000] [--short 2000] [--window 64]
                                 [--out DIR]

Runs the app in-process (TestClient, SQLite + Qdrant Edge in a temporary directory, the
vendored model). Ingests ``--short`` synthetic memories, then ``--long`` memories of
``--chars`` characters (synthetic notes joined), each ending in a one-sentence personal fact,
both through ``POST /api/v1/episodes/batch``; then asks, for each long memory, a paraphrase
of its fact that shares no word with the memory, so only meaning can find it, once ranked
as recall does by default (``balanced``) and once by the ``semantic`` preset. Reports
memories/s and characters/s of both ingests, their cost ratio per character, the parts (further
vectors) per long memory, hit@1 and hit@5 of the long memory, and its best cosine to the
question (the ``semantic`` score part) against what its main vector alone scores. Writes
``DIR/long_content.json`` and ``DIR/long_content.md`` (``long_content_w<N>`` for another
``--window``); prints the JSON. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

import numpy as np  # noqa: E402
import Stemmer  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from bench.synthetic import generate_memories  # noqa: E402
from ww.api import create_app  # noqa: E402
from ww.config import Settings  # noqa: E402
from ww.embedding import VENDORED_MODEL, OnnxEmbedder, vendored_model_dir  # noqa: E402

__all__ = ["FACTS", "long_memory", "main", "markdown", "run", "shared_words"]

URL = "/api/v1/episodes"
BATCH: Final = 8
PRESETS: Final = ("balanced", "semantic")

# (fact, a question about it that shares no word with the fact). The memories around them
# are an engineering agent's notes, so neither do they.
FACTS: Final = (
    (
        "Mariana keeps her grandmother's old violin locked in a cedar chest up in the attic.",
        "Where might grandma store that fiddle?",
    ),
    (
        "Lena adopted a three-legged tabby cat named Pickles last winter.",
        "Which pet did my sibling get?",
    ),
    (
        "Dr. Okafor prescribed amoxicillin for an ear infection and said to avoid alcohol.",
        "What medicine did the physician give me?",
    ),
    (
        "Our wedding anniversary dinner is booked at a Lebanese restaurant on Friday.",
        "Where are we eating to celebrate being married?",
    ),
    (
        "Grandpa Joaquim was born in a fishing village near Porto in 1931.",
        "What town does my grandfather come from?",
    ),
    (
        "The spare house key hides under the third flowerpot beside the porch.",
        "Where can I find an extra door opener?",
    ),
    (
        "Noah is allergic to peanuts and carries an epinephrine pen everywhere.",
        "Which food makes the boy sick?",
    ),
    (
        "Aunt Beatrice paints watercolour seascapes every Sunday morning.",
        "What hobby does my relative enjoy on weekends?",
    ),
    (
        "My passport expires in August, so it must be renewed before the trip to Kyoto.",
        "When does that travel document run out?",
    ),
    (
        "Piano lessons for Sofia moved to Wednesdays at five with Mr. Haddad.",
        "When are the girl's music classes now?",
    ),
    (
        "Rosa's favourite dessert is pistachio gelato from the shop by the harbour.",
        "Which sweet treat does she love most?",
    ),
    (
        "Uncle Felix lost his hearing aid while hiking in the Dolomites.",
        "What device went missing during that mountain walk?",
    ),
    (
        "Dentist appointment: a crown fitting with Dr. Lindqvist on 14 March.",
        "When am I seeing someone about my teeth?",
    ),
    (
        "Mum wants lilies, never roses, on her seventieth birthday.",
        "Which flowers should I buy for mother?",
    ),
    (
        "Kofi speaks Twi with his parents and French at school.",
        "What languages does that child use?",
    ),
    (
        "The vet said our beagle Biscuit needs a diet with fewer treats.",
        "What did an animal doctor advise for that dog?",
    ),
    (
        "I donated blood on Saturday; the nurse said my iron was low.",
        "What happened when giving plasma?",
    ),
    ("Clara and Tomasz are expecting twins in early October.", "Who is having two babies?"),
    (
        "Dad's vintage motorbike is a 1968 Triumph kept at Uncle Sam's farm.",
        "What old motorcycle does my father own?",
    ),
    (
        "The book club picked a novel about lighthouse keepers in Norway.",
        "Which story will our reading group discuss?",
    ),
)
_WORD = re.compile(r"[a-z0-9]+")
_STEMMER = Stemmer.Stemmer("porter")


def shared_words(a: str, b: str) -> set[str]:
    """The words two texts have in common as keyword search sees them: porter stems of
    their runs of lower case letters and digits."""
    return _stems(a) & _stems(b)


def _stems(text: str) -> set[str]:
    return {s for s in _STEMMER.stemWords(_WORD.findall(text.lower())) if s}


def long_memory(n: int, chars: int) -> tuple[str, str]:
    """Long memory ``n``: synthetic notes joined to about ``chars`` characters, ending in
    fact ``n % len(FACTS)``; and the question about that fact."""
    fact, question = FACTS[n % len(FACTS)]
    notes = itertools.cycle(
        m["content"]
        for m in generate_memories(400, seed=1000 + n)
        if not shared_words(m["content"], question)
    )
    parts: list[str] = []
    size = len(fact)
    while size < chars:
        text = next(notes)
        parts.append(text)
        size += len(text) + 1
    body = " ".join(parts)[: max(0, chars - len(fact) - 1)]
    return f"{body} {fact}", question


def _ingest(client: TestClient, session: str, contents: Sequence[str]) -> tuple[float, list[str]]:
    h = {"X-Session-ID": session}
    ids: list[str] = []
    t0 = time.perf_counter()
    for start in range(0, len(contents), BATCH):
        body = {"episodes": [{"content": c} for c in contents[start : start + BATCH]]}
        r = client.post(f"{URL}/batch", json=body, headers=h)
        assert r.status_code == 201, r.text
        ids.extend(e["id"] for e in r.json()["episodes"])
    return time.perf_counter() - t0, ids


def _ranks(
    client: TestClient, longs: Sequence[tuple[str, str]], ids: Sequence[str], preset: str
) -> list[tuple[int | None, float]]:
    """For each long memory, its rank (1-based, None past 10) for its question and its
    ``semantic`` part (0 when not among the hits)."""
    out: list[tuple[int | None, float]] = []
    for (_, question), memory_id in zip(longs, ids, strict=True):
        body = {"query": question, "learn": False, "limit": 10, "preset": preset}
        r = client.post(f"{URL}/recall", json=body, headers={"X-Session-ID": "bench-long"})
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        rank = next((n for n, h in enumerate(hits, 1) if h["id"] == memory_id), None)
        semantic = hits[rank - 1]["score_parts"]["semantic"] if rank else 0.0
        out.append((rank, semantic))
    return out


def _share(ranks: Sequence[tuple[int | None, float]], k: int) -> float:
    return round(sum(r is not None and r <= k for r, _ in ranks) / len(ranks), 3)


def run(long: int, chars: int, short: int, window: int) -> dict[str, Any]:
    embedder = OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL, window_length=window)
    longs = [long_memory(n, chars) for n in range(long)]
    shorts = [m["content"] for m in generate_memories(short, seed=7)]
    with tempfile.TemporaryDirectory(prefix="ww-bench-long-") as tmp:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=Path(tmp) / "data",
            environment="test",
            rate_limit="1000000000/hour",  # the bench measures ingest, not the limiter
            embedding_window_length=window,
        )
        with TestClient(create_app(settings)) as client:
            _ingest(client, "bench-warm", shorts[:BATCH])  # model and stores warm
            short_s, _ = _ingest(client, "bench-long", shorts)
            long_s, long_ids = _ingest(client, "bench-long", [text for text, _ in longs])
            found = {preset: _ranks(client, longs, long_ids, preset) for preset in PRESETS}
    main_only: list[float] = []
    best: list[float] = []
    parts: list[int] = []
    for text, question in longs:
        windows = embedder.windows(text)
        query, main, *rest = embedder.embed([question, text, *windows[1:]])
        main_only.append(float(np.dot(query, main)))
        best.append(max(float(np.dot(query, v)) for v in [main, *rest]))
        parts.append(len(rest))
    long_chars = sum(len(t) for t, _ in longs)
    short_chars = sum(map(len, shorts))
    per_char = (long_s / long_chars) / (short_s / short_chars)
    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "window_length": window,
        "long_memories": long,
        "long_chars": round(long_chars / long),
        "short_memories": short,
        "short_chars": round(short_chars / short),
        "short_ingest_per_s": round(short / short_s, 1),
        "short_ingest_chars_per_s": round(short_chars / short_s),
        "long_ingest_per_s": round(long / long_s, 3),
        "long_ingest_chars_per_s": round(long_chars / long_s),
        "long_over_short_per_char": round(per_char, 2),
        "parts_per_long_memory": round(statistics.mean(parts), 1),
        "fact_at_end_hit_at_1": _share(found["balanced"], 1),
        "fact_at_end_hit_at_5": _share(found["balanced"], 5),
        "fact_at_end_hit_at_1_semantic_preset": _share(found["semantic"], 1),
        "fact_semantic_mean": round(statistics.mean(best), 3),
        "main_vector_only_cosine_mean": round(statistics.mean(main_only), 3),
    }


def markdown(r: dict[str, Any]) -> str:
    return (
        "# Long content: ingest cost and recall of a fact at the end (embedded tier)\n\n"
        f"`python bench/long_content.py --long {r['long_memories']} --chars {r['long_chars']} "
        f"--short {r['short_memories']} --window {r['window_length']}` on {r['machine']}; "
        f"batches of {BATCH} through "
        "`POST /api/v1/episodes/batch`.\n\n"
        "| memories | chars each | memories/s | chars/s | parts each |\n|---|---|---|---|---|\n"
        f"| {r['short_memories']} short | {r['short_chars']} | {r['short_ingest_per_s']} | "
        f"{r['short_ingest_chars_per_s']} | 0 |\n"
        f"| {r['long_memories']} long | {r['long_chars']} | {r['long_ingest_per_s']} | "
        f"{r['long_ingest_chars_per_s']} | {r['parts_per_long_memory']} |\n\n"
        f"A character of a long memory costs {r['long_over_short_per_char']}x one of a short "
        "memory.\n\n"
        "Fact at the end, paraphrased question sharing no word (stem) with the memory, among "
        f"all {r['long_memories'] + r['short_memories']} memories of the session: hit@1 "
        f"{r['fact_at_end_hit_at_1']}, hit@5 {r['fact_at_end_hit_at_5']} (`balanced`); hit@1 "
        f"{r['fact_at_end_hit_at_1_semantic_preset']} with the `semantic` preset. The long "
        f"memory's best cosine to the question (its `semantic` part): "
        f"{r['fact_semantic_mean']} on average, against {r['main_vector_only_cosine_mean']} "
        "for its main vector alone.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", type=int, default=20)
    parser.add_argument("--chars", type=int, default=30_000)
    parser.add_argument("--short", type=int, default=2000)
    parser.add_argument("--window", type=int, default=64, help="WW_EMBEDDING_WINDOW_LENGTH")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    result = run(args.long, args.chars, args.short, args.window)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "long_content" if args.window == 64 else f"long_content_w{args.window}"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
