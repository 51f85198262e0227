"""How a budget scope's ceiling is divided between the instances that want it: max-min fair
integer shares, the same whoever computes them (budget.py shares them through the table)."""

from __future__ import annotations

import math
from collections.abc import Mapping

MIN_DEMAND = 1.0  # every live instance is counted as wanting at least this many sends/s


def allocate(ceiling: int, demands: Mapping[str, float]) -> dict[str, int]:
    """Max-min fair integer shares of `ceiling` (sends/s), summing to it.

    Water-filling: the smallest demands are met in full, the rest share what is left evenly;
    what nobody wants is split evenly too. Rounded by largest remainder, ties by instance id,
    so every instance computes the same shares from the same rows.
    """
    if not demands:
        return {}
    wants = {instance: max(MIN_DEMAND, demand) for instance, demand in demands.items()}
    shares: dict[str, float] = {}
    left = float(ceiling)
    ordered = sorted(wants, key=lambda instance: (wants[instance], instance))
    for position, instance in enumerate(ordered):
        fair = left / (len(ordered) - position)
        shares[instance] = min(wants[instance], fair)
        left -= shares[instance]
    if left > 1e-9:  # headroom nobody asked for, evenly
        for instance in shares:
            shares[instance] += left / len(shares)
    whole = {instance: math.floor(share + 1e-9) for instance, share in shares.items()}
    spare = ceiling - sum(whole.values())
    by_remainder = sorted(shares, key=lambda instance: (-(shares[instance] - whole[instance]), instance))
    for instance in by_remainder[: max(0, spare)]:
        whole[instance] += 1
    return whole
