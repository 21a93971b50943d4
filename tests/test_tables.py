"""r3gan_core.book.tables: how the book prints a table (the numbers themselves stay in the data)."""

from __future__ import annotations

import math

import pandas as pd

from r3gan_core.book import tables
from r3gan_core.book.experiments import summary_table


def test_cells_print_rounded_and_readable():
    assert [tables.cell_text(v) for v in (None, True, 1234567, 0.123456, 1e-5, 20000.0, math.nan, math.inf)] == \
        ["–", "yes", "1,234,567", "0.1235", "1e-05", "20,000", "–", "∞"]
    assert tables.cell_text((0.002, 0.0002)) == "0.002 → 0.0002"
    assert tables.cell_text((0.99, 0.99)) == "0.99"
    assert tables.cell_text(24.76701, digits=5) == "24.767"
    assert tables.cell_text("RpGAN + R1") == "RpGAN + R1"


def test_show_renames_headers_moves_the_index_into_a_column_and_keeps_the_data():
    records = [{"label": "Config E", "seed": s, "status": "ok", "fd_digits": v, "modes": m}
               for s, v, m in ((0, 12.3456, 900), (1, 13.0, 910))]
    table = summary_table(records, ("fd_digits", "modes"))
    styler = tables.show(table)
    shown = styler.data
    assert list(shown.columns) == ["run", "diverged", "mean over", "FD\u2011digits ↓", "modes ↑"]
    assert shown.iloc[0].tolist() == ["Config E", "0/2", "2 seeds", table.loc["Config E", "fd_digits"],
                                      table.loc["Config E", "modes"]]
    html = styler.to_html()
    assert 'class="r3gan-table"' in html and "index_name" not in html and ">label<" not in html


def test_show_picks_columns_transposes_and_names_prefixed_metrics():
    rows = [{"config": "B", "lr": (0.002, 0.002), "gamma": (1.0, 0.1)},
            {"config": "C", "lr": (0.002, 0.002), "gamma": (1.0, 0.1)}]
    wide = tables.show(pd.DataFrame(rows).set_index("config"), transpose=True).data
    assert list(wide.columns) == ["config", "B", "C"] and wide["C"].tolist() == ["0.002", "1 → 0.1"]
    picked = tables.show([{"config": "A", "ours fd_digits": "12 ± 1", "ours modes": 900}],
                         columns=["config", "ours fd_digits", "missing"]).data
    assert list(picked.columns) == ["config", "ours FD\u2011digits ↓"]
