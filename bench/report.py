"""From measurements to the one table: rows with their goal, the value per size,
and PASS/MISS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bench.world import size_label

DB_NAMES = {"postgres": "PostgreSQL", "sqlite": "SQLite"}


@dataclass(frozen=True)
class Row:
    """One measured figure: where it comes from in a cell's results, how it is shown,
    and the goal it must meet (on which databases)."""

    bench: str  # availability | booking | dashboard | sync | cache
    label: str
    pick: Callable[[dict], float | None]
    unit: str = "ms"
    goal: str = ""
    ok: Callable[[float], bool] | None = None
    goal_dbs: tuple[str, ...] = ("postgres", "sqlite")


def _get(*path):
    def pick(results: dict):
        value = results
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value
    return pick


ROWS = [
    Row("availability", "check_availability p50", _get("availability", "p50")),
    Row("availability", "check_availability p95", _get("availability", "p95")),
    Row("availability", "check_availability p99", _get("availability", "p99"), goal="≤ 3 ms",
        ok=lambda v: v <= 3.0, goal_dbs=("postgres",)),
    Row("booking", "start_booking, 16 callers", _get("booking", "per_second"), unit="/s", goal="≥ 200/s",
        ok=lambda v: v >= 200),
    Row("booking", "start_booking p95 answer", _get("booking", "p95")),
    Row("booking", "overlapping segment pairs", _get("booking", "overlaps"), unit="", goal="= 0",
        ok=lambda v: v == 0),
    Row("dashboard", "tiles fragment p95 (cached)", _get("dashboard", "fragment", "p95"), goal="≤ 20 ms",
        ok=lambda v: v <= 20),
    Row("dashboard", "collect_sync_metrics p50 (uncached)", _get("dashboard", "compute", "p50"),
        goal="≤ 300 ms", ok=lambda v: v <= 300),
    Row("sync", "sync drain, 2 workers, 0 ms Cal.com", _get("sync", "per_second"), unit="/s",
        goal="≥ 100/s", ok=lambda v: v >= 100),
    Row("sync", "raw client calls, 2 processes", _get("sync", "raw_per_second"), unit="/s"),
    Row("sync", "overhead (raw rate / drain rate)", _get("sync", "overhead"), unit="×", goal="≤ 2×",
        ok=lambda v: v <= 2),
    Row("cache", "cold check (Cal.com 300 ms) p50", _get("cache", "cold", "p50")),
    Row("cache", "warm check (slot cache) p50", _get("cache", "warm", "p50")),
    Row("cache", "warm p50 / cold p50", _get("cache", "ratio"), unit="", goal="≤ 0.1", ok=lambda v: v <= 0.1),
]

# Ratios across sizes: (bench, label, row label, numerator size, denominator size, goal, ok)
RATIOS = [
    ("availability", "check_availability p95 1M/1k", "check_availability p95", 1_000_000, 1_000, "≤ 1.3",
     lambda v: v <= 1.3),
    ("dashboard", "collect_sync_metrics 1M/10k", "collect_sync_metrics p50 (uncached)", 1_000_000, 10_000,
     "≤ 3", lambda v: v <= 3),
]


def _fmt(value, unit: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value}{(' ' + unit) if unit in ('ms',) else unit}"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "×":
        return f"{value:.2f}×"
    if unit == "/s":
        return f"{value:.1f}/s"
    return f"{value:.3g}"


def build(cells: dict[tuple[str, int], dict], sizes: list[int], dbs: list[str],
          benches: set[str]) -> tuple[list[str], list[list[str]], list[dict]]:
    """Header, table rows (strings) and the same as records for the JSON file."""
    header = ["Measure", "DB"] + [size_label(s) for s in sizes] + ["Goal", "Result"]
    lines, records = [], []
    for row in ROWS:
        if row.bench not in benches:
            continue
        for db_name in dbs:
            values = {size: row.pick(cells.get((db_name, size), {})) for size in sizes}
            measured = [v for v in values.values() if v is not None]
            goal, verdict = "", ""
            if row.ok is not None and db_name in row.goal_dbs:
                goal = row.goal
                verdict = ("PASS" if all(row.ok(v) for v in measured) else "MISS") if measured else "n/a"
            lines.append([row.label, DB_NAMES[db_name]] + [_fmt(values[s], row.unit) for s in sizes]
                         + [goal, verdict])
            records.append({"measure": row.label, "db": db_name, "unit": row.unit, "goal": goal,
                            "result": verdict, "values": {size_label(s): values[s] for s in sizes}})
    for bench_name, label, source, top, bottom, goal, ok in RATIOS:
        if bench_name not in benches:
            continue
        row = next(r for r in ROWS if r.label == source)
        for db_name in dbs:
            high = row.pick(cells.get((db_name, top), {}))
            low = row.pick(cells.get((db_name, bottom), {}))
            ratio = high / low if high is not None and low else None
            verdict = "n/a" if ratio is None else "PASS" if ok(ratio) else "MISS"
            shown = ["" for _ in sizes]
            if ratio is not None and top in sizes:
                shown[sizes.index(top)] = f"{ratio:.2f}"
            lines.append([label, DB_NAMES[db_name]] + shown + [goal, verdict])
            records.append({"measure": label, "db": db_name, "unit": "", "goal": goal, "result": verdict,
                            "values": {"ratio": ratio}})
    return header, lines, records


def render(header: list[str], lines: list[list[str]]) -> str:
    """A Markdown table (readable in a terminal and in the README)."""
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) if lines else len(header[i])
              for i in range(len(header))]

    def fmt(cells):
        return "| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) \
            + " |"

    rule = "|" + "|".join(("-" * (w + 2)) if i < 2 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([fmt(header), rule] + [fmt(line) for line in lines])
