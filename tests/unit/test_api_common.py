"""The pieces the routers share: ``refused`` turns one domain error into the envelope's
status with the error's own message, ``found`` answers None with a 404 naming the kind,
and ``from_state`` reads what start-up put in the app's state."""

from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from ww.api.deps import from_state
from ww.api.errors import ApiError
from ww.api.routers.common import found, refused


class Refusal(ValueError):
    pass


def test_refused_answers_the_error_with_its_status_and_message() -> None:
    with pytest.raises(ApiError) as err, refused(Refusal, 409):
        raise Refusal("no such step: 9")
    assert (err.value.status, err.value.message, err.value.code) == (
        409,
        "no such step: 9",
        "conflict",
    )
    assert err.value.__suppress_context__


def test_refused_defaults_to_422_and_lets_other_errors_through() -> None:
    with pytest.raises(ApiError) as err, refused(Refusal):
        raise Refusal("bad")
    assert err.value.status == 422
    with pytest.raises(KeyError), refused(Refusal):
        raise KeyError("other")
    with refused(Refusal):
        pass


def test_found_names_what_was_not_found() -> None:
    assert found(0, "episode") == 0
    with pytest.raises(ApiError) as err:
        found(None, "episode")
    assert (err.value.status, err.value.message) == (404, "episode not found")


def test_from_state_reads_the_app_state_by_name() -> None:
    get_thing = from_state("thing", list)
    assert get_thing.__name__ == "get_thing"
    app = FastAPI()
    app.state.thing = ["a", "b"]

    @app.get("/thing")
    async def read(request_thing: list[str] = Depends(get_thing)) -> list[str]:  # noqa: B008
        return request_thing

    with TestClient(app) as client:
        assert client.get("/thing").json() == ["a", "b"]
