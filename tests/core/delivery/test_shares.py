"""Max-min fair shares of a ceiling: what every instance computes the same from the same rows."""

from __future__ import annotations

import random

import pytest

from proactive_bot.delivery.shares import allocate


def test_shares_are_max_min_fair_integers_summing_to_the_ceiling():
    assert allocate(50, {"a": 500, "b": 500}) == {"a": 25, "b": 25}
    assert allocate(50, {"a": 5, "b": 500, "c": 80}) == {"a": 5, "b": 23, "c": 22}
    shares = allocate(50, {"a": 100, "b": 100, "c": 100})
    assert sorted(shares.values()) == [16, 17, 17] and sum(shares.values()) == 50
    # Nobody busy: the ceiling is split as headroom, an idle instance is counted as wanting 1/s.
    assert allocate(50, {"a": 0}) == {"a": 50}
    assert allocate(50, {"a": 0, "b": 1000}) == {"a": 1, "b": 49}


@pytest.mark.parametrize("ceiling", [1, 7])
def test_tiny_ceilings_still_sum_exactly(ceiling):
    shares = allocate(ceiling, {"a": 9, "b": 9, "c": 0})
    assert sum(shares.values()) == ceiling


def test_a_light_sender_gets_all_it_wants_and_the_busy_split_the_rest_evenly():
    shares = allocate(50, {"light": 3, "busy-1": 400, "busy-2": 400, "busy-3": 400})
    assert shares["light"] == 3 and sorted(shares[b] for b in ("busy-1", "busy-2", "busy-3")) == [15, 16, 16]


def test_shares_are_the_same_whoever_computes_them_and_ties_go_by_instance_id():
    demands = {"b": 10.0, "a": 10.0, "c": 10.0}
    assert allocate(10, demands) == allocate(10, dict(reversed(list(demands.items())))) == {"a": 4, "b": 3, "c": 3}


def test_whatever_the_demands_the_shares_are_whole_fair_and_sum_to_the_ceiling():

    draw = random.Random(19)
    for _ in range(500):
        ceiling = draw.randint(1, 120)
        demands = {f"i{n}": draw.choice([0.0, 0.5, 1.0, draw.uniform(0, 200)]) for n in range(draw.randint(1, 12))}
        shares = allocate(ceiling, demands)
        assert set(shares) == set(demands) and sum(shares.values()) == ceiling
        assert all(isinstance(share, int) and share >= 0 for share in shares.values())
        # Max-min fair up to rounding: nobody below both their want and the others' share.
        most = max(shares.values())
        assert all(share >= min(max(1.0, demands[i]), most) - 1 for i, share in shares.items())


def test_no_instances_no_shares():
    assert allocate(50, {}) == {}
