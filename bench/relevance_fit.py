"""Fit the coefficients of ``ww.engine.relevance`` on synthetic personal facts.

    python bench/relevance_fit.py [--sessions 40] [--seed 11]

Each synthetic session holds template facts ("My sister moved to Porto last year.", "I
adopted a parrot named Kiwi.") among small talk, each memory a chat turn of one to five
sentences of which at most one matters. Questions come in other words than their facts
("Which city did my sister move to?"). Questions about a stored fact pair with the memory
that answers it (label 1); for each question the best-looking other memory (label 0); and
two kinds of question that memory cannot answer pair with the best memory there is (label
0): about a fact that is not stored (another relative, another pet), and a near miss about
a stored fact's subject that the fact does not answer ("What does my sister do for a
living?"). A logistic regression on (cosine, keyword coverage) gives (a, b, c); nothing
here comes from a benchmark. Prints the coefficients and the fit's AUROC on a held-out seed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `ww` importable
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

from bench.locomo_ww import MemoEmbedder  # noqa: E402
from bench.metrics import auroc  # noqa: E402
from bench.run_info import vendored_embedder  # noqa: E402
from ww.engine.relevance import coverage  # noqa: E402
from ww.storage.query_terms import keyword_terms  # noqa: E402

__all__ = ["main", "pairs"]

_NAMES = ["Kiwi", "Mara", "Tomas", "Ines", "Bruno", "Lena", "Oskar", "Nadia", "Pavel", "Rosa"]
_CITIES = ["Porto", "Leeds", "Kyoto", "Denver", "Gdansk", "Austin", "Lyon", "Tartu"]
_RELATIVES = ["sister", "brother", "cousin", "neighbour", "boss", "uncle", "best friend"]
_PETS = ["cat", "dog", "parrot", "rabbit", "hamster", "tortoise"]
_ITEMS = ["bicycle", "laptop", "sofa", "camera", "guitar", "kayak", "blender"]
_SKILLS = ["pottery", "salsa", "chess", "welding", "Italian", "the cello", "climbing"]
_PLACES = ["the community centre", "a studio downtown", "the library", "an evening class"]
# (fact template, question templates, slot kind); {k} is the key slot, {v} the value. The
# questions ask the same thing in other words, as users do.
_FACTS = [
    (
        "My {k} is called {v}.",
        ["What is my {k}'s name?", "Do you remember what my {k} is called?"],
        "relative",
    ),
    (
        "My {k} moved to {v} last year.",
        ["Where does my {k} live now?", "Which city did my {k} move to?"],
        "relative_city",
    ),
    (
        "I adopted a {k} named {v}.",
        ["What is my {k} called?", "What name did I give my {k}?"],
        "pet",
    ),
    (
        "I bought a {k} for {v} dollars.",
        ["How much did I pay for the {k}?", "What did the {k} cost me?"],
        "item",
    ),
    (
        "I started learning {k} at {v}.",
        ["Where am I learning {k}?", "Where do I take my {k} lessons?"],
        "skill",
    ),
]
# Questions about a stored fact's subject that the fact does not answer: the near misses
# whose words and topic match (label 0 for their best memory).
_NEAR_MISSES = {
    "relative": "What does my {k} do for a living?",
    "relative_city": "When is my {k}'s birthday?",
    "pet": "What does my {k} like to eat?",
    "item": "Where did I buy the {k}?",
    "skill": "Who teaches my {k} class?",
}
_KEYS = {
    "relative": _RELATIVES,
    "relative_city": _RELATIVES,
    "pet": _PETS,
    "item": _ITEMS,
    "skill": _SKILLS,
}
_SMALL_TALK = [
    "The weather was grey and windy all afternoon.",
    "I watched a documentary about deep sea creatures.",
    "Can you suggest a quick recipe for dinner tonight?",
    "I had a long meeting that ran over time again.",
    "The train was delayed by twenty minutes this morning.",
    "I am trying to drink more water during the day.",
    "What are some good stretches after a long run?",
    "I cleaned the garage and found old photo albums.",
    "My phone battery drains faster than it used to.",
    "I finally finished the puzzle on the kitchen table.",
]


def _value(kind: str, rng: random.Random) -> str:
    if kind == "relative_city":
        return rng.choice(_CITIES)
    if kind == "item":
        return str(rng.randrange(40, 2000))
    if kind == "skill":
        return rng.choice(_PLACES)
    return rng.choice(_NAMES)


def _chatty(sentence: str, rng: random.Random) -> str:
    """A conversational turn around ``sentence``: a long memory of which one sentence
    matters, as chat turns are."""
    before = rng.sample(_SMALL_TALK, rng.randrange(0, 3))
    after = rng.sample(_SMALL_TALK, rng.randrange(0, 3))
    return " ".join([*before, sentence, *after])


def _session(rng: random.Random) -> tuple[list[str], list[tuple[str, int | None]]]:
    """Memories and questions (with the index of the answering memory, or None)."""
    memories = [_chatty(t, rng) for t in rng.sample(_SMALL_TALK, 6)]
    questions: list[tuple[str, int | None]] = []
    for fact, asks, kind in _FACTS:
        keys = rng.sample(_KEYS[kind], 3)
        stored, missing = keys[:2], keys[2]
        for k in stored:
            memories.append(_chatty(fact.format(k=k, v=_value(kind, rng)), rng))
            questions.append((rng.choice(asks).format(k=k), len(memories) - 1))
        questions.append((rng.choice(asks).format(k=missing), None))
        questions.append((_NEAR_MISSES[kind].format(k=rng.choice(stored)), None))
    return memories, questions


def pairs(
    n_sessions: int, seed: int, embed: MemoEmbedder
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Features (cosine, coverage) and labels of the pairs described in the module doc."""
    rng = random.Random(seed)
    rows: list[tuple[float, float]] = []
    labels: list[int] = []
    for _ in range(n_sessions):
        memories, questions = _session(rng)
        mv = embed.embed(memories)
        qv = embed.embed([q for q, _ in questions])
        for j, (q, gold) in enumerate(questions):
            terms = keyword_terms(q)
            feats = [(float(mv[i] @ qv[j]), coverage(terms, m)) for i, m in enumerate(memories)]
            # "Best-looking" by the two features' sum: the hard negative a ranker would show.
            order = sorted(range(len(memories)), key=lambda i: -sum(feats[i]))
            if gold is not None:
                rows.append(feats[gold])
                labels.append(1)
            wrong = next(i for i in order if i != gold)
            rows.append(feats[wrong])
            labels.append(0)
    return np.asarray(rows, dtype=np.float64), np.asarray(labels, dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sessions", type=int, default=40)
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args(argv)
    embed = MemoEmbedder(vendored_embedder())
    x, y = pairs(args.sessions, args.seed, embed)
    model = LogisticRegression(C=1.0).fit(x, y)
    (a, b), c = model.coef_[0], model.intercept_[0]
    xt, yt = pairs(args.sessions // 2, args.seed + 1, embed)
    prob = model.predict_proba(xt)[:, 1]
    result = {
        "coefficients": [round(float(a), 2), round(float(b), 2), round(float(c), 2)],
        "pairs": len(y),
        "held_out_auroc": round(auroc(prob[yt == 1].tolist(), prob[yt == 0].tolist()), 3),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
