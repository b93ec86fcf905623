"""A grid's results: one table of runs, mean and spread per cell, paired comparisons.

* :func:`collect` reads the run files of a grid's current runs (stale ones, made from
  a config that has since changed, are left out).
* :func:`cell_table` gives mean and sample standard deviation (ddof 1) over seeds per
  (config, benchmark, metric), with parameters, FLOPs and training time.
* :func:`paired` compares two configs seed by seed: the differences ``d_s`` of a
  metric, their mean and standard deviation, how many seeds agree in sign, the paired
  t statistic and its two-sided p-value (Student's t with n - 1 degrees of freedom),
  and whether the difference is *beyond the seed spread*: every seed agrees in sign
  and ``|mean d|`` exceeds both cells' standard deviations.
* :func:`write_report` writes ``results.json``, ``results.csv`` and ``summary.md``.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from hstl_core.atomic import atomic_write_text
from hstl_core.experiments.grid import Grid
from hstl_core.experiments.runner import is_done, result_path

RUN_COLUMNS = ("run_id", "config", "benchmark", "seed", "model", "params", "flops", "iterations",
               "train_seconds", "test_seconds", "train_cpu_seconds", "test_cpu_seconds", "threads",
               "code_revision", "cfg_hash")


def collect(grid: Grid) -> list[dict[str, Any]]:
    """The result of every finished current run of ``grid``, in grid order."""
    return [json.loads(result_path(grid, spec).read_text()) for spec in grid.runs() if is_done(grid, spec)]


def _values(results: list[dict], config: str, benchmark: str, metric: str, subset: str | None = None) -> dict[int, float]:
    """``{seed: value}`` of one cell (``subset`` ``"A"``/``"B"``: that half of the test ids)."""
    out = {}
    for r in results:
        if r["config"] == config and r["benchmark"] == benchmark:
            source = r["subsets"][subset] if subset else r["metrics"]
            if source.get(metric) is not None:
                out[r["seed"]] = float(source[metric])
    return out


def _mean_sd(values: list[float]) -> tuple[float, float]:
    mean = float(np.mean(values)) if values else math.nan
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return mean, sd


@dataclass(frozen=True)
class Paired:
    """Config ``a`` minus config ``b`` on one metric, seed by seed."""

    a: str
    b: str
    benchmark: str
    metric: str
    diffs: dict[int, float]
    sd_a: float
    sd_b: float

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def mean(self) -> float:
        return _mean_sd(list(self.diffs.values()))[0]

    @property
    def sd(self) -> float:
        return _mean_sd(list(self.diffs.values()))[1]

    @property
    def wins(self) -> int:
        """Seeds on which ``a`` is higher than ``b``."""
        return sum(d > 0 for d in self.diffs.values())

    @property
    def t(self) -> float:
        if self.n < 2 or not self.sd > 0:
            return math.nan
        return self.mean / (self.sd / math.sqrt(self.n))

    @property
    def p(self) -> float:
        """Two-sided p-value of the paired t-test (nan with fewer than 2 seeds or no spread)."""
        return float(2 * stats.t.sf(abs(self.t), self.n - 1)) if math.isfinite(self.t) else math.nan

    @property
    def beyond_spread(self) -> bool:
        """Every seed agrees in sign and ``|mean|`` exceeds both cells' seed standard deviations."""
        if self.n < 2 or not all(map(math.isfinite, (self.sd_a, self.sd_b))):
            return False
        same_sign = self.wins in (0, self.n) and all(d != 0 for d in self.diffs.values())
        return same_sign and abs(self.mean) > max(self.sd_a, self.sd_b)

    def statement(self) -> str:
        """One line: ``a - b = +2.1 +- 0.8 (3/3 seeds, t = 4.5, p = 0.05): beyond the seed spread``."""
        verdict = "beyond the seed spread" if self.beyond_spread else "within the seed spread"
        return (f"{self.a} - {self.b} on {self.benchmark} {self.metric}: {self.mean:+.1f} +- {self.sd:.1f} "
                f"({self.wins}/{self.n} seeds higher, t = {self.t:.2f}, p = {self.p:.3f}): {verdict}")


def paired(results: list[dict], a: str, b: str, benchmark: str, metric: str) -> Paired:
    """Config ``a`` minus ``b`` on ``metric`` over the seeds both have."""
    va, vb = _values(results, a, benchmark, metric), _values(results, b, benchmark, metric)
    seeds = sorted(set(va) & set(vb))
    return Paired(a, b, benchmark, metric, {s: va[s] - vb[s] for s in seeds},
                  _mean_sd([va[s] for s in seeds])[1], _mean_sd([vb[s] for s in seeds])[1])


def metric_names(results: list[dict], benchmark: str) -> list[str]:
    """The metrics of a benchmark's runs, in the order the first run lists them."""
    for r in results:
        if r["benchmark"] == benchmark:
            return list(r["metrics"])
    return []


def cell_table(grid: Grid, results: list[dict]) -> list[dict[str, Any]]:
    """One row per (config, benchmark) with runs: n, cost, and ``<metric>`` / ``<metric>_sd`` per metric."""
    rows = []
    for bench in grid.benchmarks:
        names = metric_names(results, bench)
        for config in grid.configs:
            runs = [r for r in results if r["config"] == config and r["benchmark"] == bench]
            if not runs:
                continue
            row: dict[str, Any] = {
                "config": config, "benchmark": bench, "n": len(runs), "params": runs[0]["params"],
                "gflops": runs[0]["flops"] / 1e9, "train_seconds": float(np.mean([r["train_seconds"] for r in runs])),
                "train_cpu_seconds": float(np.mean([r["train_cpu_seconds"] for r in runs])),
            }
            for metric in names:
                row[metric], row[f"{metric}_sd"] = _mean_sd(list(_values(results, config, bench, metric).values()))
            rows.append(row)
    return rows


def subset_stability(grid: Grid, results: list[dict], benchmark: str) -> dict[str, Any]:
    """How much the headline moves between the two halves of the test ids, and between seeds.

    Returns ``mean_abs_half_diff`` / ``max_abs_half_diff`` (per run, |A - B|),
    ``mean_seed_sd`` (the cells' seed standard deviations, averaged), and the
    configs ranked by headline mean on the whole test set and on each half.
    """
    metric = grid.benchmarks[benchmark].headline
    runs = [r for r in results if r["benchmark"] == benchmark]
    half = [abs(r["subsets"]["A"][metric] - r["subsets"]["B"][metric]) for r in runs
            if r["subsets"]["A"].get(metric) is not None and r["subsets"]["B"].get(metric) is not None]
    sds = [_mean_sd(list(_values(results, c, benchmark, metric).values()))[1] for c in grid.configs]
    sds = [s for s in sds if math.isfinite(s)]

    def ranking(subset: str | None) -> list[str]:
        means = {c: _mean_sd(list(_values(results, c, benchmark, metric, subset).values()))[0] for c in grid.configs}
        return sorted((c for c in means if math.isfinite(means[c])), key=lambda c: -means[c])

    return {
        "metric": metric,
        "mean_abs_half_diff": float(np.mean(half)) if half else math.nan,
        "max_abs_half_diff": float(np.max(half)) if half else math.nan,
        "mean_seed_sd": float(np.mean(sds)) if sds else math.nan,
        "ranking": ranking(None), "ranking_A": ranking("A"), "ranking_B": ranking("B"),
    }


def comparisons(grid: Grid, results: list[dict]) -> list[Paired]:
    """Every pair the grid asks for (each config against ``reference`` unless ``comparisons`` lists pairs)."""
    pairs = grid.comparisons or [(c, grid.reference) for c in grid.configs if c != grid.reference]
    out = []
    for bench in grid.benchmarks:
        for a, b in pairs:
            for metric in metric_names(results, bench):
                p = paired(results, a, b, bench, metric)
                if p.n:
                    out.append(p)
    return out


def runs_csv(results: list[dict]) -> str:
    """One line per run: identity, cost, time, revision, then every metric and the halves' headline values."""
    metrics = list(dict.fromkeys(m for r in results for m in r["metrics"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*RUN_COLUMNS, *metrics, *(f"A:{m}" for m in metrics), *(f"B:{m}" for m in metrics)])
    for r in results:
        row = [r[c] for c in RUN_COLUMNS]
        for source in (r["metrics"], r["subsets"]["A"], r["subsets"]["B"]):
            row += [_fmt(source.get(m)) for m in metrics]
        writer.writerow(row)
    return buffer.getvalue()


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def summary_markdown(grid: Grid, results: list[dict]) -> str:
    """``summary.md``: the cell table per benchmark, the paired comparisons, the test-set stability."""
    total = len(grid.runs())
    lines = [f"# Grid `{grid.name}`: {len(results)} of {total} runs finished", ""]
    revisions = sorted({r["code_revision"] for r in results})
    lines += [f"Code revision(s): {', '.join(f'`{r}`' for r in revisions) or 'none'}. Mean +- sample standard "
              "deviation over seeds; FLOPs of one forward of a "
              f"{grid.flops_input[0]}-frame {grid.flops_input[1]} x {grid.flops_input[2]} sequence.", ""]
    table = cell_table(grid, results)
    for bench in grid.benchmarks:
        rows = [r for r in table if r["benchmark"] == bench]
        if not rows:
            continue
        names = metric_names(results, bench)
        lines += [f"## {bench} (headline: {grid.benchmarks[bench].headline})", ""]
        lines.append("| config | seeds | " + " | ".join(names) + " | params | GFLOPs | train CPU s | train wall s |")
        lines.append("|---" * (len(names) + 6) + "|")
        for r in rows:
            cells = [f"{r[m]:.1f} +- {r[m + '_sd']:.1f}" if math.isfinite(r[m + "_sd"]) else f"{r[m]:.1f}" for m in names]
            lines.append(f"| {r['config']} | {r['n']} | " + " | ".join(cells)
                         + f" | {r['params']:,} | {r['gflops']:.3f} | {r['train_cpu_seconds']:.0f} | {r['train_seconds']:.0f} |")
        lines.append("")
        stability = subset_stability(grid, results, bench)
        lines.append(
            f"Test-set stability ({stability['metric']}): between the two halves of the test ids a run's value moves by "
            f"{_fmt(stability['mean_abs_half_diff'], 1)} on average (at most {_fmt(stability['max_abs_half_diff'], 1)}); "
            f"the seed standard deviation per cell is {_fmt(stability['mean_seed_sd'], 1)} on average. Ranking on all "
            f"test ids: {', '.join(stability['ranking'])}; on half A: {', '.join(stability['ranking_A'])}; "
            f"on half B: {', '.join(stability['ranking_B'])}."
        )
        lines.append("")
    pairs = comparisons(grid, results)
    if pairs:
        lines += ["## Paired comparisons (seed by seed)", "",
                  "| benchmark | metric | a - b | mean +- sd | seeds a > b | t | p | beyond seed spread |",
                  "|---|---|---|---|---|---|---|---|"]
        for p in pairs:
            lines.append(f"| {p.benchmark} | {p.metric} | {p.a} - {p.b} | {p.mean:+.1f} +- {_fmt(p.sd, 1)} | "
                         f"{p.wins}/{p.n} | {_fmt(p.t)} | {_fmt(p.p, 3)} | {'yes' if p.beyond_spread else 'no'} |")
        lines.append("")
    return "\n".join(lines)


def write_report(grid: Grid) -> list[dict[str, Any]]:
    """Write ``results.json`` (every run), ``results.csv`` and ``summary.md`` into the grid's folder."""
    results = collect(grid)
    folder = grid.results_dir
    atomic_write_text(folder / "results.json", json.dumps(results, indent=1, allow_nan=False) + "\n")
    atomic_write_text(folder / "results.csv", runs_csv(results))
    atomic_write_text(folder / "summary.md", summary_markdown(grid, results))
    return results
