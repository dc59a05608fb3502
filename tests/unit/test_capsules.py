"""Routing-by-agreement against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ww.engine.capsules import mean_vector, route_by_agreement, squash

# Two members point along x, one along y.
U = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])


def test_squash_keeps_direction_and_maps_length() -> None:
    # |s| = 5: length 25/26, direction (3, 4)/5.
    v = squash(np.array([3.0, 4.0]))
    assert float(np.linalg.norm(v)) == pytest.approx(25 / 26)
    assert v == pytest.approx(np.array([3.0, 4.0]) / 5 * 25 / 26)
    assert squash(np.zeros(2)) == pytest.approx(np.zeros(2))


def test_one_iteration_is_the_mean_direction() -> None:
    # c = 1/3 each; s = (2/3, 1/3); direction (2, 1)/√5; agreement = (2+2+1)/(3√5) = √5/3.
    r = route_by_agreement(U, iterations=1)
    assert r.vector == pytest.approx(np.array([2.0, 1.0]) / math.sqrt(5))
    assert r.confidence == pytest.approx(math.sqrt(5) / 3)
    assert r.couplings == pytest.approx([1 / 3] * 3)


def test_second_iteration_follows_the_agreeing_members() -> None:
    # After one pass v = 5/14 · (2, 1)/√5, so the logits are u·v = √5/7, √5/7, √5/14.
    b = np.array([math.sqrt(5) / 7, math.sqrt(5) / 7, math.sqrt(5) / 14])
    c = np.exp(b) / np.exp(b).sum()
    expected = np.array([2 * c[0], c[2]])
    expected /= np.linalg.norm(expected)
    r = route_by_agreement(U, iterations=2)
    assert r.couplings == pytest.approx(c)
    assert r.vector == pytest.approx(expected)
    assert r.confidence == pytest.approx(float(c @ (U @ expected)))


def test_three_iterations_pull_away_from_the_outlier_more_than_the_mean() -> None:
    routed, mean = route_by_agreement(U), mean_vector(U)
    assert routed.couplings[2] < routed.couplings[0] == pytest.approx(routed.couplings[1])
    assert routed.vector[0] > mean.vector[0]  # closer to the two agreeing members
    assert routed.confidence > mean.confidence
    assert float(np.linalg.norm(routed.vector)) == pytest.approx(1.0)


def test_identical_members_agree_fully_and_inputs_are_normalised() -> None:
    r = route_by_agreement(np.array([[0.0, 3.0], [0.0, 0.5]]))
    assert r.vector == pytest.approx([0.0, 1.0])
    assert r.confidence == pytest.approx(1.0)


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        route_by_agreement(np.zeros((0, 3)))
    with pytest.raises(ValueError):
        route_by_agreement(U, iterations=0)
