"""The lift of a campaign: how much more often the messaged members came back than the holdout.

Intervals are Wilson's for each share and Newcombe's hybrid score interval (his method 10, 1998)
for their difference. Wald's p ± z·√(p(1-p)/n) is what most dashboards show; on the small groups a
community has, and with shares near 0, it gives intervals that are too narrow or below zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Lift:
    treatment_rate: float
    holdout_rate: float
    absolute: float  # treatment rate - holdout rate
    interval: Interval  # of `absolute`, 95 %
    relative: float | None  # absolute / holdout rate; None when nobody in the holdout returned


def wilson(successes: int, n: int, z: float = Z95) -> Interval:
    if n <= 0:
        raise ValueError("no trials")
    if not 0 <= successes <= n:
        raise ValueError("successes outside 0..n")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> Interval:
    """95 % interval of p1 - p2 (x1 of n1 against x2 of n2)."""
    p1, p2 = x1 / n1, x2 / n2
    a, b = wilson(x1, n1, z), wilson(x2, n2, z)
    d = p1 - p2
    return Interval(d - math.sqrt((p1 - a.low) ** 2 + (b.high - p2) ** 2),
                    d + math.sqrt((a.high - p1) ** 2 + (p2 - b.low) ** 2))


def lift(returned_treatment: int, treatment: int, returned_holdout: int, holdout: int) -> Lift:
    t, h = returned_treatment / treatment, returned_holdout / holdout
    return Lift(t, h, t - h, newcombe(returned_treatment, treatment, returned_holdout, holdout),
                (t - h) / h if h > 0 else None)
