"""Stage glue: what one notebook needs beyond the shared readers of :mod:`pai.compendium.experiments` -- the
tables its figures and claims read, reshaped from the results, one module per stage.

Kept out of the notebooks so that a notebook cell stays the question, one call, the figure and what
it shows; kept out of :mod:`pai.compendium.experiments` because each piece serves one stage only.  Their prose
notes (``*_note``: Markdown a notebook renders under a figure) format numbers with :func:`fmt_number`.
"""
from typing import Mapping


def fmt_number(value: float, kind: str = "g") -> str:
    """A table value as prose: ``kind`` "pct" (an accuracy or fraction as a percentage, one decimal),
    "log" (a log10 value, one decimal; ``-inf``: "no path"), or "g" (three significant digits); NaN is
    "n/a".  The notebooks' rendered Markdown uses it so that no number in their text is typed by hand."""
    import math

    value = float(value)
    if math.isnan(value):
        return "n/a"
    if kind == "log":
        return "no path" if value == -math.inf else f"{value:.1f}"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    return f"{value:.3g}"


def fmt_values(values: Mapping[str, float], kind: str = "g") -> str:
    """``"a 1.0, b 2.0"``: label and value, in the mapping's order."""
    return ", ".join(f"{label} {fmt_number(v, kind)}" for label, v in values.items())
