"""``python -m hstl_core experiment GRID.yaml``: run a grid's missing runs, then write its report.

    python -m hstl_core experiment experiments/main.yaml                   # everything not yet done
    python -m hstl_core experiment experiments/main.yaml --configs HSTL --max-runs 2   # one chunk
    python -m hstl_core experiment experiments/main.yaml --report-only     # tables from the run files
    python -m hstl_core experiment experiments/main.yaml --list            # runs and their state
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from hstl_core.experiments.grid import load_grid
from hstl_core.experiments.results import write_report
from hstl_core.experiments.runner import is_done, run_grid, select
from hstl_core.paths import OUTPUT_ROOT


def _names(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def add_experiment_parser(tools: argparse._SubParsersAction) -> None:
    parser = tools.add_parser("experiment", help="run a research grid (configs x seeds x benchmarks) and report it")
    parser.add_argument("grid", help="grid YAML file (see hstl_core/experiments/grid.py)")
    parser.add_argument("--configs", type=_names, default=None, help="comma-separated config names (default: all)")
    parser.add_argument("--benchmarks", type=_names, default=None, help="comma-separated benchmark names (default: all)")
    parser.add_argument("--seeds", type=_ints, default=None, help="comma-separated seeds (default: the grid's)")
    parser.add_argument("--max-runs", type=int, default=None, help="stop after training this many runs")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--output_root", default=str(OUTPUT_ROOT / "experiments"),
                        help="checkpoints and logs go to OUTPUT_ROOT/<grid name>/<config hash>/...")
    parser.add_argument("--report-only", action="store_true", help="only rewrite results.json/csv and summary.md")
    parser.add_argument("--list", action="store_true", help="print every selected run and whether it is done")
    parser.set_defaults(func=_experiment)


def _experiment(args: argparse.Namespace) -> int:
    grid = load_grid(args.grid)
    for option, known in (("configs", grid.configs), ("benchmarks", grid.benchmarks)):
        unknown = sorted(set(getattr(args, option) or []) - set(known))
        if unknown:
            raise SystemExit(f"--{option}: {unknown} not in {args.grid} (known: {sorted(known)})")
    runs = select(grid.runs(), args.configs, args.benchmarks, args.seeds)
    if args.list:
        for spec in runs:
            print(f"{'done' if is_done(grid, spec) else 'todo'}  {spec.run_id}  ({spec.cfg_hash})")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.report_only:
        started = time.perf_counter()

        def report(spec, status: str) -> None:
            print(f"[{time.perf_counter() - started:7.0f} s] {status:8s} {spec.run_id}", flush=True)
            if status == "finished":
                write_report(grid)

        counts = run_grid(grid, runs, output_root=Path(args.output_root),
                          max_runs=args.max_runs, on_status=report)
        print(f"{counts['finished']} run(s) trained, {counts['done']} already done, {counts['busy']} held by another process")
    results = write_report(grid)
    print(f"{len(results)} of {len(grid.runs())} runs in {grid.results_dir}/summary.md")
    return 0
