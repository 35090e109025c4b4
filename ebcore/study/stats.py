"""Statistics over seeds: mean, standard deviation and a Student-t 95 % confidence interval, for one
sample of accuracies or for paired per-seed differences.

    summarize([0.81, 0.83, 0.82])                  # Summary(n=3, mean=0.82, sd=0.01, lo=..., hi=...)
    paired_difference({0: .82, 1: .80}, {0: .81, 1: .81})   # EB - dense, matched by seed

With one seed there is no interval (lo = hi = NaN): callers must treat that as "no evidence".
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

import numpy as np
from scipy import stats as _scipy_stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """n values summarized: mean, sample sd (ddof = 1), and the t-interval [lo, hi] of the mean."""

    n: int
    mean: float
    sd: float
    lo: float
    hi: float

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}

    def format(self, scale: float = 1.0, digits: int = 2) -> str:
        """'mean ± half-width' (or just the mean when there is no interval)."""
        if self.n == 0:
            return "n/a"
        if math.isnan(self.half_width):
            return f"{self.mean * scale:.{digits}f} (n=1)"
        return f"{self.mean * scale:.{digits}f} ± {self.half_width * scale:.{digits}f}"


def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student-t critical value for the mean of n values (n - 1 degrees of freedom)."""
    if n < 2:
        return math.nan
    return float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1))


def summarize(values: Iterable[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean, sd and the t confidence interval of the mean; NaN values are dropped."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(float(v))], dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = t_quantile(n, confidence) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE) -> Summary:
    """Summary of a[seed] - b[seed] over the seeds both have (a paired comparison)."""
    seeds = sorted(set(a) & set(b))
    return summarize([a[s] - b[s] for s in seeds], confidence)
