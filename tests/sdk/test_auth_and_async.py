"""Credentials, and the async client, in both modes."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.sdk.conftest import ADMIN_KEY, API_KEY, client
from ww.api.auth import Role
from ww.api.token import mint
from ww.sdk import (
    AsyncWorldWeaver,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)


def test_a_wrong_key_is_an_authentication_error(mode: str, secured_app: FastAPI) -> None:
    wrong = client(mode, secured_app, api_key="not-the-key-at-all")
    with wrong as ww, pytest.raises(AuthenticationError) as caught:
        ww.episodes.list()
    assert (caught.value.status_code, caught.value.code) == (401, "unauthorized")
    assert "X-API-Key" in caught.value.message
    assert "not-the-key" not in str(caught.value)


def test_no_credential_is_an_authentication_error(mode: str, secured_app: FastAPI) -> None:
    with client(mode, secured_app) as ww, pytest.raises(AuthenticationError):
        ww.episodes.create(content="who am I?")


def test_each_credential_reaches_what_its_role_may(mode: str, secured_app: FastAPI) -> None:
    token = mint(secured_app.state.settings, role=Role.ADMIN, sub="sdk-test")
    with client(mode, secured_app, api_key=API_KEY) as user:
        stored = user.episodes.create(content="a user's memory")
        with pytest.raises(PermissionDeniedError) as caught:
            user.sessions.list()
        assert caught.value.code == "forbidden"
        with user.with_credentials(admin_key=ADMIN_KEY) as admin:
            assert stored.id in {e.id for e in admin.episodes.list_all()}
            assert [s.session_id for s in admin.sessions.list_all()] == [stored.session_id]
        bearer = user.with_credentials(token=token)
        assert bearer.sessions.stats(stored.session_id).episodes == 1
        assert bearer.session_id == user.session_id
        with pytest.raises(PermissionDeniedError):  # the view changed nothing on `user`
            user.sessions.list()


async def test_the_async_client_does_what_the_sync_one_does(aww: AsyncWorldWeaver) -> None:
    stored = await aww.episodes.create(content="the async path stores too")
    assert (await aww.episodes.get(stored.id)).content == stored.content
    hits = (await aww.episodes.recall("async path", limit=1)).hits
    assert [h.episode.id for h in hits] == [stored.id]
    await aww.episodes.create_batch([{"content": f"page item {i}"} for i in range(3)])
    walked = [e.id async for e in aww.episodes.list_all(limit=2)]
    assert len(walked) == 4 and stored.id in walked
    result = await aww.recall("async path")
    assert (await aww.feedback(result.recall_id, reward=0.8)).changes
    skill = await aww.skills.create(
        name="s", task="do the thing", steps=[{"order": 1, "action": "go"}]
    )
    assert (await aww.skills.how_to("do the thing")).skill is not None
    assert (await aww.entities.create(name="E")).name == "E"
    assert (await aww.health()).status == "ok"
    await aww.skills.delete(skill.id)
    with pytest.raises(NotFoundError) as caught:
        await aww.skills.get(skill.id)
    assert caught.value.request_id
    with pytest.raises(ValidationError):
        await aww.episodes.create(content="x", importance=2)


async def test_an_async_session_scope(aww: AsyncWorldWeaver) -> None:
    async with aww.session("async-a") as a:
        mine = await a.episodes.create(content="scoped")
    with aww.session("async-b") as b, pytest.raises(NotFoundError):
        await b.episodes.get(mine.id)
    assert (await aww.sessions.stats("async-a")).episodes == 1
    assert (await aww.episodes.list()).items == []
