"""Property: whatever a mix of sessions does through HTTP, no session ever sees another's data.

A hypothesis state machine drives 2-4 sessions with random creates, batch creates, updates,
deletes, mark-important calls, recalls (learning or not), lists, gets and session deletes,
some aimed at ids of other sessions. A model tracks who owns every id and external id ever
made and which ids each session still holds. After every step each session's visible set
must equal the model's, and every response must mention only the caller's own records.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.api.helpers import running_client, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import Embedder, OnnxEmbedder

EPISODES = "/api/v1/episodes"

# A small vocabulary keeps the number of distinct texts (and so of model calls) low.
WORDS = ["deploy", "parser", "coffee", "outage", "invoice", "rocket", "garden", "kernel"]
text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
outcomes = st.sampled_from(["success", "failure", "partial", "neutral"])
tags = st.sampled_from(["red", "blue"])


class IsolationMachine(RuleBasedStateMachine):
    embedder: ClassVar[Embedder | None] = None

    def __init__(self) -> None:
        super().__init__()
        assert self.embedder is not None
        self._stack = contextlib.ExitStack()
        data_dir = self._stack.enter_context(scratch_dir("ww-iso-")) / "data"
        self.clock = ManualClock()
        self.client: TestClient = self._stack.enter_context(
            running_client(data_dir, self.embedder, self.clock)
        )
        self.sessions: list[str] = []
        self.owner: dict[str, str] = {}  # every id ever created -> its session
        self.ext_owner: dict[str, str] = {}  # every external id ever used -> its session
        self.live: dict[str, set[str]] = {}  # session -> ids it still holds
        self.archived: set[str] = set()
        self.known: set[str] = set()  # sessions that exist server-side (made by a create)
        self.counter = 0

    def teardown(self) -> None:
        self._stack.close()

    # -- helpers ------------------------------------------------------------------------------
    def _h(self, session: str) -> dict[str, str]:
        return {"X-Session-ID": session}

    def _check_episode(self, session: str, ep: dict[str, Any]) -> None:
        """An episode in a response to ``session`` must be one of ``session``'s."""
        assert ep["session_id"] == session, (session, ep)
        assert self.owner.get(ep["id"]) == session, (session, ep["id"])
        if ep["external_id"] is not None:
            assert self.ext_owner.get(ep["external_id"]) == session, (session, ep)

    def _new_external_id(self, session: str) -> str:
        self.counter += 1
        ext = f"{session}-{self.counter}"
        self.ext_owner[ext] = session
        return ext

    def _record(self, session: str, ep: dict[str, Any]) -> None:
        assert ep["session_id"] == session
        assert ep["id"] not in self.owner, "an id was handed out twice"
        self.owner[ep["id"]] = session
        self.live[session].add(ep["id"])
        self.known.add(session)
        self._check_episode(session, ep)

    def _pick(self, data: st.DataObject, with_id: bool = False) -> tuple[str, str]:
        """A session to act in and, when asked, any id ever made (often another's)."""
        session = data.draw(st.sampled_from(self.sessions))
        if not with_id:
            return session, ""
        return session, data.draw(st.sampled_from(self._all_ids()))

    def _expect(self, session: str, ident: str) -> bool:
        return ident in self.live[session]

    def _all_ids(self) -> list[str]:
        return sorted(self.owner)

    def _list_all(self, session: str, include_archived: bool, limit: int) -> list[str]:
        seen: list[str] = []
        cursor = None
        for _ in range(100):
            params: dict[str, Any] = {"limit": limit, "include_archived": include_archived}
            if cursor:
                params["cursor"] = cursor
            r = self.client.get(EPISODES, params=params, headers=self._h(session))
            assert r.status_code == 200, r.text
            page = r.json()
            for ep in page["items"]:
                self._check_episode(session, ep)
            seen += [ep["id"] for ep in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)), "pagination repeated an item"
        return seen

    # -- setup --------------------------------------------------------------------------------
    @initialize(
        names=st.lists(
            st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,11}", fullmatch=True),
            min_size=2,
            max_size=4,
            unique_by=str.lower,
        )
    )
    def make_sessions(self, names: list[str]) -> None:
        # Distinct names; lower-case uniqueness also catches any case folding.
        self.sessions = names
        self.live = {s: set() for s in names}

    # -- rules --------------------------------------------------------------------------------
    @rule(data=st.data(), content=text, outcome=outcomes, tag=tags, with_ext=st.booleans())
    def create(self, data: st.DataObject, content: str, outcome: str, tag: str, with_ext: bool):
        session, _ = self._pick(data)
        body: dict[str, Any] = {"content": content, "outcome": outcome, "metadata": {"tag": tag}}
        if with_ext:
            body["external_id"] = self._new_external_id(session)
        r = self.client.post(EPISODES, json=body, headers=self._h(session))
        assert r.status_code == 201, r.text
        self._record(session, r.json())

    @rule(data=st.data(), contents=st.lists(text, min_size=1, max_size=5))
    def batch_create(self, data: st.DataObject, contents: list[str]) -> None:
        session, _ = self._pick(data)
        items = [{"content": c, "external_id": self._new_external_id(session)} for c in contents]
        r = self.client.post(
            f"{EPISODES}/batch", json={"episodes": items}, headers=self._h(session)
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["count"] == len(items)
        for ep in body["episodes"]:
            self._record(session, ep)

    @precondition(lambda self: self.owner)
    @rule(data=st.data(), content=st.none() | text, archived=st.none() | st.booleans(), tag=tags)
    def update(
        self, data: st.DataObject, content: str | None, archived: bool | None, tag: str
    ) -> None:
        session, ident = self._pick(data, with_id=True)
        patch: dict[str, Any] = {"metadata": {"tag": tag}}
        if content is not None:
            patch["content"] = content
        if archived is not None:
            patch["archived"] = archived
        r = self.client.patch(f"{EPISODES}/{ident}", json=patch, headers=self._h(session))
        if self._expect(session, ident):
            assert r.status_code == 200, r.text
            self._check_episode(session, r.json())
            if archived is not None:
                (self.archived.add if archived else self.archived.discard)(ident)
        else:
            assert r.status_code == 404, r.text

    @precondition(lambda self: self.owner)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        session, ident = self._pick(data, with_id=True)
        r = self.client.delete(f"{EPISODES}/{ident}", headers=self._h(session))
        if self._expect(session, ident):
            assert r.status_code == 204, r.text
            self.live[session].discard(ident)
            self.archived.discard(ident)
        else:
            assert r.status_code == 404, r.text

    @precondition(lambda self: self.owner)
    @rule(data=st.data(), importance=st.floats(0.0, 1.0))
    def mark_important(self, data: st.DataObject, importance: float) -> None:
        session, ident = self._pick(data, with_id=True)
        r = self.client.post(
            f"{EPISODES}/{ident}/mark-important",
            json={"importance": importance},
            headers=self._h(session),
        )
        if self._expect(session, ident):
            assert r.status_code == 200, r.text
            self._check_episode(session, r.json())
            assert r.json()["importance"] >= importance
        else:
            assert r.status_code == 404, r.text

    @precondition(lambda self: self.owner)
    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        session, ident = self._pick(data, with_id=True)
        r = self.client.get(f"{EPISODES}/{ident}", headers=self._h(session))
        if self._expect(session, ident):
            assert r.status_code == 200, r.text
            self._check_episode(session, r.json())
        else:
            assert r.status_code == 404, r.text

    @rule(
        data=st.data(),
        query=text,
        learn=st.booleans(),
        include_archived=st.booleans(),
        tag=st.none() | tags,
    )
    def recall(
        self,
        data: st.DataObject,
        query: str,
        learn: bool,
        include_archived: bool,
        tag: str | None,
    ) -> None:
        session, _ = self._pick(data)
        filters: dict[str, Any] = {"include_archived": include_archived}
        if tag is not None:
            filters["metadata"] = {"tag": tag}
        body = {"query": query, "learn": learn, "limit": 100, "filters": filters}
        r = self.client.post(f"{EPISODES}/recall", json=body, headers=self._h(session))
        assert r.status_code == 200, r.text
        allowed = self.live[session] if include_archived else self.live[session] - self.archived
        for hit in r.json()["hits"]:
            self._check_episode(session, hit["episode"])
            assert hit["id"] == hit["episode"]["id"]
            assert hit["external_id"] == hit["episode"]["external_id"]
            assert hit["id"] in allowed, "recall returned a deleted or archived episode"
            if tag is not None:
                assert hit["episode"]["metadata"]["tag"] == tag
        if tag is None:
            # Every candidate fits within the limit, so recall sees the whole visible set.
            assert {h["id"] for h in r.json()["hits"]} == allowed

    @rule(data=st.data())
    def delete_session(self, data: st.DataObject) -> None:
        session, _ = self._pick(data)
        r = self.client.delete(f"/api/v1/sessions/{session}")
        if session in self.known:
            assert r.status_code == 200, r.text
            assert r.json() == {
                "session_id": session,
                "deleted_episodes": len(self.live[session]),
                "deleted_entities": 0,
                "deleted_skills": 0,
            }
        else:
            assert r.status_code == 404, r.text
        self.known.discard(session)
        self.archived -= self.live[session]
        self.live[session] = set()
        # ``owner`` keeps the deleted ids: no response to any session may show them again.

    @rule(hours=st.integers(1, 72))
    def advance_clock(self, hours: int) -> None:
        self.clock.advance(hours=hours)

    @rule(data=st.data(), include_archived=st.booleans())
    def list_paginated(self, data: st.DataObject, include_archived: bool) -> None:
        session, _ = self._pick(data)
        shown = set(self._list_all(session, include_archived, limit=3))
        expected = self.live[session]
        assert shown == (expected if include_archived else expected - self.archived)

    # -- invariants ---------------------------------------------------------------------------
    def _check_visible(self, session: str) -> None:
        r = self.client.get(
            EPISODES, params={"limit": 200, "include_archived": True}, headers=self._h(session)
        )
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        for ep in items:
            self._check_episode(session, ep)
        assert {ep["id"] for ep in items} == self.live[session]
        assert {ep["id"] for ep in items if ep["archived"]} == self.live[session] & self.archived

    @invariant()
    def visible_sets_match_the_model(self) -> None:
        for session in self.sessions:
            self._check_visible(session)


def test_sessions_never_see_each_other(onnx_embedder: OnnxEmbedder) -> None:
    IsolationMachine.embedder = onnx_embedder
    try:
        run_state_machine_as_test(
            IsolationMachine,
            settings=settings(
                max_examples=15,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                database=None,
            ),
        )
    finally:
        IsolationMachine.embedder = None
