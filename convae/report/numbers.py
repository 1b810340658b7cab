"""Numbers as a paper prints them: each mean rounded to the first significant digit of its
sample std (0.1384 ± 0.0073 -> 0.138 ± 0.007, 10.8 ± 0.038 -> 10.80 ± 0.04), one notation
per column (a column of small or large values is printed in units of one power of ten,
named in its header, instead of mixing 0.0001896 and 7.108e-05), and no spread where there
is none (a configuration of one seed is its mean alone).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# A column whose largest |mean| is below SCALED_BELOW, or at least SCALED_FROM, is printed in
# units of 10^e (e: the exponent of that largest value): 0.0005486 -> 5.486 (x10^-4).
SCALED_BELOW = 1e-2
SCALED_FROM = 1e4
# Significant digits of a column where no configuration has a std (every one of one seed).
DIGITS_WITHOUT_SPREAD = 3


def _finite(value: float) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def column_exponent(values: Sequence[float]) -> int:
    """The power of ten a column of ``values`` (its means and stds) is printed in units of:
    0 for values of everyday size."""
    sizes = [abs(v) for v in values if _finite(v) and v != 0]
    if not sizes or SCALED_BELOW <= max(sizes) < SCALED_FROM:
        return 0
    return math.floor(math.log10(max(sizes)))


def std_decimals(std: float) -> int | None:
    """Decimals that keep one significant digit of ``std`` (negative: tens, hundreds), after
    rounding (0.096 is 0.1: one decimal); None for no spread (NaN, zero)."""
    if not _finite(std) or std <= 0:
        return None
    decimals = -math.floor(math.log10(std))
    if round(std, decimals) >= 10 ** (1 - decimals) * (1 - 1e-9):
        decimals -= 1
    return decimals


def fallback_decimals(means: Sequence[float], stds: Sequence[float]) -> int:
    """Decimals of the column's cells without a spread: those of its largest std (the seeds'
    spread seen elsewhere in the column: no digit finer than the noise), else
    ``DIGITS_WITHOUT_SPREAD`` significant digits of its largest |mean|."""
    known = [d for d in map(std_decimals, stds) if d is not None]
    if known:
        return min(known)
    sizes = [abs(m) for m in means if _finite(m) and m != 0]
    if not sizes:
        return 0
    return DIGITS_WITHOUT_SPREAD - 1 - math.floor(math.log10(max(sizes)))


def fixed(value: float, decimals: int, minus: str = "-") -> str:
    """``value`` rounded to ``decimals`` (negative: to tens, hundreds), no exponent."""
    text = f"{round(value, decimals):.{max(decimals, 0)}f}"
    if text.startswith("-"):
        text = text[1:] if not text.strip("-0.") else minus + text[1:]  # no "-0.00"
    return text


@dataclass(frozen=True)
class Column:
    """How one metric column is printed: in units of 10^exponent, and the decimals of a cell
    that has no std."""

    exponent: int
    fallback: int

    def cell(self, mean: float, std: float, pm: str, dash: str, minus: str = "-") -> str:
        """``mean ± std`` with the mean rounded to the std's first significant digit; the
        mean alone when there is no spread (one seed); ``dash`` when there is no mean."""
        if not _finite(mean):
            return dash
        scale = 10.0**self.exponent
        spread = std / scale if _finite(std) else math.nan
        decimals = std_decimals(spread)
        if decimals is None:
            text = fixed(mean / scale, self.fallback, minus)
            return text if not _finite(std) else f"{text}{pm}0"  # seeds that agree exactly
        return f"{fixed(mean / scale, decimals, minus)}{pm}{fixed(spread, decimals, minus)}"


def column(means: Sequence[float], stds: Sequence[float]) -> Column:
    """The one rule every cell of a column follows."""
    exponent = column_exponent([*means, *stds])
    scale = 10.0**exponent
    scaled_means = [m / scale for m in means if _finite(m)]
    scaled_stds = [s / scale for s in stds if _finite(s)]
    return Column(exponent, fallback_decimals(scaled_means, scaled_stds))


SUPERSCRIPT = str.maketrans("-0123456789n", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹ⁿ")


def power_of_ten(exponent: int | str) -> str:
    """10⁻⁴ (or 10ⁿ) as plain text."""
    return "10" + str(exponent).translate(SUPERSCRIPT)
