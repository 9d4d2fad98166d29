"""Tables fit the terminal (issue 16, item 14): the leading columns that fit are shown, the others named."""

from __future__ import annotations

import io

from rich.console import Console

from fs_cli import output

ROWS = [{"name": f"fg_customer_{i}", "kind": "feature_group", "owner": "fraud-ml@example.com",
         "tags": "fraud, transactions, rolling", "latest commit": "#2 2026-12-01 16:05:58", "rows": 17633}
        for i in range(3)]
COLUMNS = list(ROWS[0])


def _render(monkeypatch, width: int) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=out, width=width, force_terminal=True, color_system=None))
    monkeypatch.setattr(output, "err_console", Console(file=err, width=width, force_terminal=True, color_system=None))
    output.print_table(ROWS, COLUMNS, title="catalog")
    return out.getvalue(), err.getvalue()


def test_an_80_column_terminal_shows_the_leading_columns_whole_and_names_the_rest(monkeypatch):
    text, note = _render(monkeypatch, 80)
    lines = text.splitlines()
    assert lines and max(len(ln) for ln in lines) <= 80
    assert len(lines) == 3 + 3 + 2  # title, header (3 lines), one line per row, bottom border: no wrapped cell
    for r in ROWS:
        assert r["name"] in text and r["owner"] in text
    hidden = [c for c in COLUMNS if c not in output.fitting_columns(ROWS, COLUMNS, 80)]
    assert hidden == ["tags", "latest commit", "rows"]
    assert "latest commit" not in text and "17633" not in text  # hidden, not squeezed
    assert all(c in note for c in hidden) and "--json" in note


def test_a_wide_terminal_shows_every_column(monkeypatch):
    text, note = _render(monkeypatch, 200)
    assert note == "" and all(c in text for c in COLUMNS) and "17633" in text


def test_at_least_two_columns_even_when_nothing_fits():
    assert output.fitting_columns(ROWS, COLUMNS, 10) == COLUMNS[:2]
