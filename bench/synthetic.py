"""Deterministic synthetic memories and queries for the latency benchmark.

    from bench.synthetic import generate_memories, generate_queries
    memories = generate_memories(10_000, seed=7)   # JSON-ready EpisodeCreate bodies
    queries = generate_queries(500, seed=8)

Texts come from a small template grammar over a few hundred words plus numbers, ticket ids
and weekdays, so they read like an engineering agent's notes, vary from 5 to 80 words, and
are distinct within one call. The same ``(n, seed, start)`` always gives the same output
(only :mod:`random` with an explicit seed is used; nothing depends on the clock or on hash
randomisation).
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

__all__ = [
    "MAX_WORDS",
    "MIN_WORDS",
    "OUTCOMES",
    "PROJECTS",
    "SPEAKERS",
    "START",
    "generate_memories",
    "generate_queries",
]

MIN_WORDS: Final = 5
MAX_WORDS: Final = 80
START: Final = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_SECONDS: Final = 365 * 24 * 3600

SPEAKERS: Final = (
    "alice",
    "bob",
    "carol",
    "dmitri",
    "eun-ji",
    "farah",
    "gustavo",
    "user",
    "assistant",
)
PROJECTS: Final = ("billing", "auth", "search", "mobile-app", "data-pipeline", "infra", "docs")
OUTCOMES: Final = ("neutral", "success", "failure", "partial")
_OUTCOME_WEIGHTS: Final = (55, 20, 10, 15)
_SOURCES: Final = ("chat", "cli", "ide", "slack", "email", "standup")
_TOOLS: Final = ("git", "pytest", "kubectl", "terraform", "psql", "docker", "grafana", "jira")
_TOPICS: Final = ("deploy", "incident", "design", "review", "planning", "preference", "bug")
_BRANCHES: Final = ("main", "develop", "release", "hotfix", "feature")

_PEOPLE: Final = (
    "Alice",
    "Bob",
    "Carol",
    "Dmitri",
    "Eun-ji",
    "Farah",
    "Gustavo",
    "Hiro",
    "Ines",
    "Jonas",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Oskar",
    "Priya",
    "the on-call engineer",
    "the product manager",
    "the customer",
    "the security team",
)
_COMPONENTS: Final = (
    "billing service",
    "invoice generator",
    "payment gateway",
    "auth proxy",
    "token refresher",
    "session store",
    "search indexer",
    "query planner",
    "ranking model",
    "mobile client",
    "push notifier",
    "offline cache",
    "ingest worker",
    "kafka consumer",
    "nightly ETL job",
    "warehouse loader",
    "load balancer",
    "DNS resolver",
    "Kubernetes cluster",
    "Terraform module",
    "CI pipeline",
    "release script",
    "docs site",
    "API reference",
    "rate limiter",
    "feature flag service",
    "metrics exporter",
    "alerting rules",
    "backup cron",
    "Postgres replica",
    "Redis cluster",
    "S3 bucket policy",
    "websocket gateway",
    "email sender",
    "PDF renderer",
    "GraphQL layer",
    "admin dashboard",
    "onboarding flow",
    "password reset page",
    "audit log",
)
_NOUNS: Final = (
    "migration",
    "latency spike",
    "memory leak",
    "race condition",
    "deadlock",
    "timeout",
    "schema change",
    "config drift",
    "certificate",
    "retry storm",
    "regression",
    "flaky test",
    "dependency upgrade",
    "rollback",
    "hotfix",
    "data loss",
    "duplicate charge",
    "slow query",
    "disk pressure",
    "connection pool",
    "cache miss rate",
    "error budget",
    "runbook",
    "postmortem",
    "design doc",
    "code review",
    "load test",
    "canary",
    "quota",
    "backlog",
    "pager alert",
    "customer complaint",
    "security patch",
    "API key",
    "index rebuild",
    "checksum mismatch",
    "clock skew",
    "thread dump",
    "heap profile",
    "cost report",
)
_ADJECTIVES: Final = (
    "intermittent",
    "critical",
    "minor",
    "unexpected",
    "recurring",
    "silent",
    "noisy",
    "expensive",
    "legacy",
    "experimental",
    "brittle",
    "undocumented",
    "urgent",
    "harmless",
    "partial",
    "cascading",
    "stale",
    "misconfigured",
    "overloaded",
    "new",
)
_VERBS_PAST: Final = (
    "deployed",
    "rolled back",
    "debugged",
    "patched",
    "reviewed",
    "benchmarked",
    "refactored",
    "migrated",
    "documented",
    "monitored",
    "restarted",
    "scaled up",
    "scaled down",
    "profiled",
    "disabled",
    "re-enabled",
    "archived",
    "tuned",
    "rewrote",
    "load tested",
)
_VERBS: Final = (
    "deploy",
    "roll back",
    "rewrite",
    "split",
    "cache",
    "shard",
    "retire",
    "upgrade",
    "pin",
    "rate limit",
    "monitor",
    "document",
    "replace",
    "audit",
    "simplify",
)
_FAILURES: Final = (
    "crashed",
    "timed out",
    "ran out of memory",
    "returned stale data",
    "dropped requests",
    "double counted events",
    "leaked file handles",
    "stopped consuming",
    "filled the disk",
    "threw 502 errors",
)
_CAUSES: Final = (
    "an expired certificate",
    "a missing index",
    "a bad feature flag",
    "an unbounded retry loop",
    "a schema mismatch",
    "a noisy neighbour",
    "a typo in the config",
    "an upstream outage",
    "a leap second",
    "a full connection pool",
    "a race between two writers",
    "an old client version",
)
_EVENTS: Final = (
    "release",
    "incident",
    "outage",
    "sprint review",
    "standup",
    "retro",
    "launch",
    "maintenance window",
    "audit",
    "demo",
    "hackathon",
    "quarterly planning",
)
_TECH: Final = (
    "Rust",
    "Go",
    "Python",
    "SQLite",
    "Postgres",
    "Redis",
    "Kafka",
    "gRPC",
    "protobuf",
    "WebAssembly",
    "ONNX",
    "Qdrant",
    "Terraform",
    "Helm",
    "OpenTelemetry",
)
_PREFERENCES: Final = (
    "small pull requests",
    "tabs over spaces",
    "dark mode dashboards",
    "async standups",
    "typed Python",
    "blue-green deploys",
    "feature flags over branches",
    "written design docs",
    "pairing on incidents",
    "Friday deploy freezes",
    "short meetings",
    "verbose logging",
)
_ENVS: Final = ("production", "staging", "the dev cluster", "CI", "the EU region", "us-east-1")
_UNITS: Final = ("minutes", "hours", "seconds", "days", "requests", "gigabytes", "retries")
_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_TIME_REFS: Final = (
    "before the next release",
    "next sprint",
    "by Friday",
    "after the freeze",
    "this quarter",
    "once the migration lands",
    "tomorrow morning",
    "before the audit",
)
_FILLERS: Final = (
    "as discussed",
    "for the record",
    "again",
    "according to the dashboard",
    "per the runbook",
    "in the end",
    "to be safe",
    "after some back and forth",
)

_TEMPLATES: Final = (
    "{person} {verb_past} the {adj} {component} in {env}",
    "we {verb_past} the {component} after {number} {unit} of {noun} problems",
    "the {component} {failure} because of {cause}",
    "{person} asked whether we should {verb} the {component} {time_ref}",
    "remember that {person} prefers {preference}",
    "the {event} on {weekday} took {number} {unit}",
    "{person} suggested using {tech} for the {component}",
    "one {adj} {noun} showed up in the {component} after the {event}",
    "decided to {verb} the {component} {time_ref}",
    "ticket {ticket} tracks the {adj} {noun} in the {component}",
    "the {noun} in {env} was caused by {cause}",
    "{person} wrote a {noun} about the {component} {filler}",
    "{number} {unit} were lost when the {component} {failure}",
    "the {project} team {verb_past} the {component} {filler}",
    "{person} thinks the {noun} is {adj} and wants to {verb} the {component}",
    "during the {event} {person} {verb_past} the {component} in {env}",
    "the fix for ticket {ticket} needs {tech} version {version}",
    "{person} said the {component} costs {number} dollars a day in {env}",
)
_QUERY_TEMPLATES: Final = (
    "what did {person} say about the {component}",
    "why did the {component} fail",
    "when did the {event} on {weekday} happen",
    "{adj} {noun} in the {component}",
    "how long did the {noun} take",
    "who {verb_past} the {component}",
    "what does {person} prefer",
    "is ticket {ticket} about the {component}",
    "{noun} caused by {cause}",
    "should we {verb} the {component}",
    "which {project} incidents involved the {component}",
    "{component} problems in {env}",
    "did anyone use {tech} for the {component}",
    "what happened after the {event}",
)

_TICKET_PREFIXES: Final = ("WW", "OPS", "BILL", "SEC")
_SLOT_RE: Final = re.compile(r"\{(\w+)\}")
_SLOTS: Final[dict[str, tuple[str, ...]]] = {
    "person": _PEOPLE,
    "component": _COMPONENTS,
    "noun": _NOUNS,
    "adj": _ADJECTIVES,
    "verb_past": _VERBS_PAST,
    "verb": _VERBS,
    "failure": _FAILURES,
    "cause": _CAUSES,
    "event": _EVENTS,
    "tech": _TECH,
    "preference": _PREFERENCES,
    "env": _ENVS,
    "unit": _UNITS,
    "weekday": _WEEKDAYS,
    "time_ref": _TIME_REFS,
    "filler": _FILLERS,
    "project": PROJECTS,
}


def _slot(name: str, rng: random.Random) -> str:
    if name == "number":
        return str(rng.randint(2, 60) if rng.random() < 0.5 else rng.randint(2, 5000))
    if name == "ticket":
        return f"{rng.choice(_TICKET_PREFIXES)}-{rng.randint(100, 9999)}"
    if name == "version":
        return f"{rng.randint(0, 9)}.{rng.randint(0, 30)}"
    return rng.choice(_SLOTS[name])


def _fill(template: str, rng: random.Random) -> str:
    # Only the template's own slots draw from rng, in order of appearance.
    return _SLOT_RE.sub(lambda m: _slot(m.group(1), rng), template)


def _target_words(rng: random.Random) -> int:
    # Log-normal: median ~20 words, a long tail up to the cap, like chat turns and notes.
    return min(MAX_WORDS, max(MIN_WORDS, round(rng.lognormvariate(3.0, 0.65))))


def _text(rng: random.Random) -> str:
    target = _target_words(rng)
    words: list[str] = []
    while len(words) < target:
        sentence = _fill(rng.choice(_TEMPLATES), rng)
        words.extend((sentence[0].upper() + sentence[1:] + ".").split())
    words = words[:target]
    text = " ".join(words)
    return text if text.endswith(".") else text.rstrip(",;") + "."


def generate_memories(
    n: int, *, seed: int = 20240101, start: datetime = START
) -> list[dict[str, Any]]:
    """``n`` distinct episode bodies for ``POST /api/v1/episodes/batch`` (JSON-ready)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    while len(out) < n:
        content = _text(rng)
        if content in seen:
            continue  # redraw; still deterministic because rng state moves on
        seen.add(content)
        i = len(out)
        ts = start + timedelta(seconds=rng.randrange(SPAN_SECONDS))
        project = rng.choice((*PROJECTS, None))
        context: dict[str, Any] = {}
        if project is not None:
            context["project"] = project
        if rng.random() < 0.4:
            context["tool"] = rng.choice(_TOOLS)
        if rng.random() < 0.2:
            context["git_branch"] = rng.choice(_BRANCHES)
        metadata: dict[str, Any] = {}
        if rng.random() < 0.6:
            metadata["topic"] = rng.choice(_TOPICS)
        if rng.random() < 0.3:
            metadata["priority"] = rng.randint(1, 5)
        if rng.random() < 0.2:
            metadata["reviewed"] = rng.random() < 0.5
        body: dict[str, Any] = {
            "content": content,
            "timestamp": ts.isoformat(),
            "speaker": rng.choice(SPEAKERS),
            "source": rng.choice(_SOURCES),
            "context": context,
            "metadata": metadata,
            "external_id": f"syn-{seed}-{i:07d}",
            "outcome": rng.choices(OUTCOMES, weights=_OUTCOME_WEIGHTS)[0],
            "importance": round(rng.random(), 3) if rng.random() < 0.3 else 0.5,
        }
        out.append(body)
    return out


def generate_queries(n: int, *, seed: int = 20240202) -> list[str]:
    """``n`` distinct recall queries over the same vocabulary as the memories."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < n:
        query = _fill(rng.choice(_QUERY_TEMPLATES), rng)
        if rng.random() < 0.25:
            query += " " + rng.choice(_TIME_REFS)
        seen.setdefault(query + "?", None)
    return list(seen)
