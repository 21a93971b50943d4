"""How a chapter shows a table: readable headers, rounded numbers, the index as a plain first column.

The book layer builds its tables as DataFrames or lists of dict rows (`experiments.summary_table`,
`comparisons.roadmap_table`, `chapter.recipe_table`, `networks.anatomy.parameter_table`, ...): those hold the
numbers that tests check and metrics.json stores, under their code names. `show` is only the view of one::

    from r3gan_core.book import tables
    tables.show(comparisons.roadmap_table(runs))

It returns a pandas Styler (Jupyter and the built book render it as an HTML table): snake_case keys become the
headers of HEADERS (with the direction that is better, where there is one), floats keep `digits` significant
digits, integers get thousands separators, a (start, end) schedule reads "start → end", and no extra header row
names the index. Numbers and text keep their values; only their printing changes.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

__all__ = ["HEADERS", "PREFIXES", "cell_text", "header", "show"]

# Column names as the book prints them. ↓ / ↑: lower / higher is better.
HEADERS = {
    "label": "run",
    "failed": "diverged",
    "mean over": "mean over",
    "fd_digits": "FD\u2011digits ↓",  # a non-breaking hyphen: the header wraps at the space only
    "kid_digits": "KID\u2011digits ↓",
    "modes": "modes ↑",
    "reverse_kl": "reverse KL ↓",
    "modes_confident": "confident modes ↑",
    "reverse_kl_confident": "confident reverse KL ↓",
    "precision_digits": "precision ↑",
    "recall_digits": "recall ↑",
    "images_per_second": "images / s",
    "images_seen": "images seen",
    "wall_time_s": "wall (s)",
    "grad_norm_real": "‖∇D‖ reals",
    "grad_norm_fake": "‖∇D‖ fakes",
    "penalty every": "penalty every (steps)",
    "path length every": "path length every (steps)",
    "EMA half-life": "EMA half-life (images)",
    # the 2D toys
    "fail_step": "stopped at step",
    "hq": "HQ fraction ↑",
    "kl": "reverse KL ↓",
    "peak_grad_norm_fake": "peak ‖∇D‖ fakes",
    # BigGAN's lessons
    "gamma": "γ",
    "late_max_grad_norm_fake": "late max ‖∇D‖ fakes",
    "max_sigma_growth_G": "σ₀ growth, G",
    "max_sigma_growth_D": "σ₀ growth, D",
    "fd_cost_pct": "FD-digits cost (%)",
}
PREFIXES = ("ours ", "paper ")  # "ours fd_digits" reads "ours FD-digits ↓"

_NUMERIC = re.compile(r"^[\s\d.,+\-−–×eE±→/%∞()]*$")  # what a column of numbers prints as


def _number(value: float, digits: int) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def cell_text(value: Any, digits: int = 4) -> str:
    """One cell as the book prints it (see the module docstring)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return _number(float(value), digits)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, numbers.Real) for v in value):
        start, end = (cell_text(v, digits) for v in value)
        return start if start == end else f"{start} → {end}"
    if isinstance(value, (tuple, list)):
        return ", ".join(cell_text(v, digits) for v in value)
    return str(value)


def header(name: str, rename: dict[str, str] | None = None) -> str:
    """A column's printed name: `rename`, else HEADERS, else HEADERS after a prefix of PREFIXES, else itself."""
    headers = {**HEADERS, **(rename or {})}
    if name in headers:
        return headers[name]
    prefix = next((p for p in PREFIXES if name.startswith(p) and name[len(p):] in HEADERS), None)
    return prefix + HEADERS[name[len(prefix):]] if prefix else name


def show(data: Any, columns: list[str] | tuple[str, ...] | None = None, rename: dict[str, str] | None = None,
         digits: int = 4, caption: str | None = None, transpose: bool = False):
    """A table, readable. `data`: a DataFrame or a list of dict rows. Its index (unless a plain 0..n-1 range) becomes
    the first column. `columns`: which columns to show, in order, by their code names (the index's included;
    names the data lacks are skipped). `rename` overrides HEADERS. `caption` goes above the table (default: the
    name of the columns axis, if it has one). `transpose`: one column per row of the data, for few long rows.
    Returns a pandas Styler."""
    import pandas as pd

    frame = data.copy() if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))
    if caption is None and frame.columns.name:
        caption = str(frame.columns.name)
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [" ".join(str(part) for part in col if part != "") for col in frame.columns]
    frame.columns.name = None
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    text = frame.map(lambda v: cell_text(v, digits))
    text.columns = [header(str(c), rename) for c in frame.columns]
    if transpose:
        first = text.columns[0]
        text = text.set_index(first).T.rename_axis(first).reset_index()
        text.columns.name = None
    right = [c for c in text.columns[1:] if text[c].map(lambda v: bool(_NUMERIC.match(v))).all()]
    styler = (text.style.hide(axis="index")
              .set_table_attributes('class="r3gan-table"')
              .set_properties(subset=right, **{"text-align": "right"})
              .set_table_styles({c: [{"selector": "th", "props": [("text-align", "right")]}] for c in right}))
    if caption:
        styler = styler.set_caption(caption)
    return styler
