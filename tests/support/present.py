"""Asserting that a lookup found something, in one expression (and narrowing its type)."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def present(value: T | None) -> T:
    """`value`, failing the test when it is None."""
    assert value is not None
    return value
