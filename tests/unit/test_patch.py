"""Every partial update refuses a null for a field a null would erase, naming the field,
and accepts a null for the fields that may be cleared."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ww.models import EpisodeUpdate
from ww.models.patch import Patch
from ww.models.procedural import SkillUpdate
from ww.models.semantic import EntitySupersede, EntityUpdate

UPDATES: list[type[Patch]] = [EpisodeUpdate, EntityUpdate, EntitySupersede, SkillUpdate]
CLEARABLE = {
    EpisodeUpdate: ["speaker", "source", "external_id"],
    EntityUpdate: ["source"],
    EntitySupersede: ["source"],
    SkillUpdate: ["trigger_pattern"],
}


def test_each_update_names_what_it_refuses() -> None:
    assert EpisodeUpdate.not_nullable == (
        "content",
        "timestamp",
        "context",
        "metadata",
        "outcome",
        "importance",
        "archived",
    )
    assert EntityUpdate.not_nullable == ("name", "entity_type", "summary", "details")
    assert EntitySupersede.not_nullable == EntityUpdate.not_nullable
    assert SkillUpdate.not_nullable == ("name", "domain", "task", "steps")


@given(
    st.sampled_from(UPDATES).flatmap(
        lambda m: st.tuples(st.just(m), st.sets(st.sampled_from(m.not_nullable), min_size=1))
    )
)
def test_a_null_for_a_field_that_cannot_be_cleared_is_refused(
    case: tuple[type[Patch], set[str]],
) -> None:
    model, fields = case
    with pytest.raises(ValidationError) as err:
        model.model_validate(dict.fromkeys(fields))
    message = str(err.value)
    expected = ", ".join(f for f in model.not_nullable if f in fields)
    assert f"{expected} cannot be null" in message


@pytest.mark.parametrize("model", UPDATES)
def test_a_null_clears_a_clearable_field(model: type[Patch]) -> None:
    for name in CLEARABLE[model]:
        patch = model.model_validate({name: None})
        assert name in patch.model_fields_set
        assert getattr(patch, name) is None


@pytest.mark.parametrize("model", UPDATES)
def test_unknown_fields_are_refused(model: type[Patch]) -> None:
    with pytest.raises(ValidationError, match="extra"):
        model.model_validate({"no_such_field": 1})
