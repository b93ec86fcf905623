"""Run a grid: each run trained by the engine's ``Trainer``, tested, written atomically.

A run is skipped when its result file exists for the same merged config (same
``cfg_hash``); a run whose config changed is redone. A run killed mid-training
resumes from its last checkpoint (batches are a pure function of seed and
iteration, so the resumed run is the uninterrupted one). Several runner processes
may work on one grid at once: each run is claimed with a lock file first.

Training is in-process and single-process (no torchrun): on a CPU one process with
all threads is as fast as gloo ranks and has no start-up cost. Times are recorded as
wall seconds and as this process's CPU seconds (``time.process_time``; with
``num_workers: 0`` loading is included): on a shared machine the wall time says
how busy it was, the CPU time what the run costs. The test phase embeds
the test set once and evaluates it whole and on two halves of the test ids (A: the
1st, 3rd, ... id; B: the others), so each run also tells how much the metric moves
between two test sets of half the size.
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from hstl_core.engine.checkpoints import run_dir
from hstl_core.engine.distributed import init_distributed
from hstl_core.engine.evaluator import evaluate_features, extract_embeddings
from hstl_core.engine.main import setup_logging
from hstl_core.engine.trainer import Trainer
from hstl_core.evaluation import save_results
from hstl_core.experiments.grid import Grid, RunSpec
from hstl_core.lifeline import alive
from hstl_core.model import build_model
from hstl_core.model.summary import summary
from hstl_core.paths import REPO_ROOT

log = logging.getLogger("hstl")

CHECKPOINT = re.compile(r"-(\d+)\.pt$")


def code_revision() -> str:
    """``git rev-parse HEAD`` of the repository, ``+dirty`` when ``hstl_core/`` has uncommitted changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hstl_core"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def model_cost(model_cfg: dict, flops_input: tuple[int, int, int]) -> tuple[int, int]:
    """(parameters, FLOPs of one eval forward of a ``[1, *flops_input]`` sequence), see ``model.summary``."""
    table = summary(build_model(model_cfg), (1, *flops_input))
    return table.total_params, table.total_flops


def result_path(grid: Grid, spec: RunSpec) -> Path:
    return grid.results_dir / "runs" / f"{spec.run_id}.json"


def is_done(grid: Grid, spec: RunSpec) -> bool:
    """A result file exists and was made from this run's config."""
    path = result_path(grid, spec)
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("cfg_hash") == spec.cfg_hash
    except ValueError:
        return False


def metrics_of(result: dict[str, Any]) -> dict[str, float]:
    """The numbers of a protocol result: per-condition rank-1 (plus their ``mean``) or Rank-k/mAP/mINP."""
    metrics = {k: float(v["mean"]) for k, v in result.items() if isinstance(v, dict) and "mean" in v}
    if metrics:
        metrics["mean"] = float(np.mean(list(metrics.values())))
    for key, value in result.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not key.startswith("num_"):
            metrics[key] = float(value)
    return metrics


def _subset(features: dict[str, Any], ids: set[str]) -> dict[str, Any]:
    keep = np.asarray([label in ids for label in features["labels"]])
    return {
        "embeddings": features["embeddings"][keep],
        **{key: [v for v, k in zip(features[key], keep) if k] for key in ("labels", "types", "views")},
    }


def _latest_checkpoint(folder: Path, total: int) -> int:
    """The highest iteration <= ``total`` with a checkpoint in ``folder/checkpoints`` (0 if none)."""
    found = [int(m.group(1)) for p in (folder / "checkpoints").glob("*.pt") if (m := CHECKPOINT.search(p.name))]
    return max((i for i in found if i <= total), default=0)


def execute(grid: Grid, spec: RunSpec, output_root: Path) -> dict[str, Any]:
    """Train and test one run; write and return its result (see the module docstring)."""
    cfg = json.loads(json.dumps(spec.cfg))
    root = output_root / grid.name / spec.cfg_hash
    info = init_distributed()
    if info.distributed:
        raise RuntimeError("the experiment runner trains in one process; run it without torchrun")
    folder = run_dir(cfg, "train", root)
    setup_logging(info, folder, log_to_file=True)
    resumed_from = _latest_checkpoint(folder, cfg["trainer_cfg"]["total_iter"])
    cfg["trainer_cfg"]["restore_hint"] = resumed_from
    params, flops = model_cost(cfg["model_cfg"], grid.flops_input)
    log.info("run %s (config %s): %s parameters, %.3f GFLOPs", spec.run_id, spec.cfg_hash, f"{params:,}", flops / 1e9)
    started, cpu = time.perf_counter(), time.process_time()
    trainer = Trainer(cfg, info, root)
    outcome = trainer.train()
    train_seconds, train_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    features = extract_embeddings(cfg, trainer.model, info)
    full = evaluate_features(cfg, features)
    ids = sorted(set(features["labels"]))
    halves = {"A": set(ids[0::2]), "B": set(ids[1::2])}
    subsets = {name: metrics_of(evaluate_features(cfg, _subset(features, part))) for name, part in halves.items()}
    test_seconds, test_cpu = time.perf_counter() - started, time.process_time() - cpu
    result = {
        "run_id": spec.run_id, "grid": grid.name, "config": spec.config, "benchmark": spec.benchmark,
        "seed": spec.seed, "cfg_hash": spec.cfg_hash, "code_revision": code_revision(),
        "model": cfg["model_cfg"]["model"], "params": params, "flops": flops, "flops_input": list(grid.flops_input),
        "iterations": outcome["iteration"], "resumed_from": resumed_from,
        "train_seconds": round(train_seconds, 2), "test_seconds": round(test_seconds, 2),
        "train_cpu_seconds": round(train_cpu, 2), "test_cpu_seconds": round(test_cpu, 2),
        "threads": torch.get_num_threads(), "host": socket.gethostname(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "test_ids": len(ids), "test_sequences": len(features["labels"]),
        "train_scalars": outcome["scalars"],
        "metrics": metrics_of(full), "subsets": subsets, "protocol": full, "cfg": spec.cfg,
    }
    save_results(result, result_path(grid, spec))
    return result


def _claim(lock: Path) -> bool:
    """Create ``lock`` (pid@host) unless a live process holds it; a dead holder's lock is taken over."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = f"{os.getpid()}@{socket.gethostname()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = lock.read_text().strip() if lock.exists() else ""
            pid, _, host = holder.partition("@")
            if host == socket.gethostname() and pid.isdigit() and not alive(pid):
                lock.unlink(missing_ok=True)
                continue
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(me)
        return True
    return False


def select(runs: Iterable[RunSpec], configs: list[str] | None = None, benchmarks: list[str] | None = None,
           seeds: list[int] | None = None) -> list[RunSpec]:
    """The runs whose config, benchmark and seed are in the given lists (None: all)."""
    return [
        r for r in runs
        if (configs is None or r.config in configs)
        and (benchmarks is None or r.benchmark in benchmarks)
        and (seeds is None or r.seed in seeds)
    ]


def run_grid(
    grid: Grid,
    runs: list[RunSpec],
    output_root: Path,
    max_runs: int | None = None,
    on_status: Callable[[RunSpec, str], None] = lambda spec, status: None,
) -> dict[str, int]:
    """Run ``runs`` of ``grid`` in order, skipping finished and claimed ones.

    ``max_runs`` stops after that many runs were trained (a resumable chunk).
    ``on_status(spec, status)`` hears ``done`` (result exists), ``busy`` (another
    process holds it), ``start`` and ``finished``. Returns the count per status.
    """
    counts = {"done": 0, "busy": 0, "finished": 0}
    for spec in runs:
        if max_runs is not None and counts["finished"] >= max_runs:
            break
        if is_done(grid, spec):
            counts["done"] += 1
            on_status(spec, "done")
            continue
        lock = result_path(grid, spec).with_suffix(".lock")
        if not _claim(lock):
            counts["busy"] += 1
            on_status(spec, "busy")
            continue
        try:
            if is_done(grid, spec):
                counts["done"] += 1
                on_status(spec, "done")
                continue
            on_status(spec, "start")
            execute(grid, spec, output_root)
            counts["finished"] += 1
            on_status(spec, "finished")
        finally:
            lock.unlink(missing_ok=True)
    return counts
