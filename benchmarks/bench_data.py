"""Speed of the data half: SynGait rendering, pretreatment, the training loader.

    python benchmarks/bench_data.py [--workers 2] [--sequences 22]

Prints one table. Generation is measured on a sample of the default preset and
extrapolated to its 124 subjects x 10 conditions x 11 views = 13,640 sequences
(the raw PNG writing is not included). Not a test: numbers depend on the machine
and on what else runs on it.
"""
from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np

from hstl_core import paths
from hstl_core.data.preprocess import pretreat_sequence
from hstl_core.data.sampling import build_loader
from hstl_core.data.synthetic import CONDITIONS, PRESETS, VIEWS, generate_sequence
from hstl_core.data.syngait import ensure_syngait


def bench_generation(preset: str, sequences: int) -> tuple[float, list[np.ndarray]]:
    """Raw frames per second on one core over ``sequences`` sequences of ``preset``."""
    keys = list(itertools.islice(itertools.product(range(1, 4), CONDITIONS, VIEWS), 0, None, 7))[:sequences]
    started = time.perf_counter()
    seqs = [generate_sequence(s, c, v, preset) for s, c, v in keys]
    return sum(len(s) for s in seqs) / (time.perf_counter() - started), seqs


def bench_preprocess(seqs: list[np.ndarray], img_size: int) -> float:
    """Pretreated raw frames per second on one core."""
    started = time.perf_counter()
    for seq in seqs:
        pretreat_sequence(seq, img_size)
    return sum(len(s) for s in seqs) / (time.perf_counter() - started)


def bench_loader(workers: int, batches: int = 30) -> float:
    """Training sequences per second of the small set's loader ([8, 8] batches, 30-frame clips)."""
    root = ensure_syngait("small", img_size=32)
    data_cfg = {"dataset_root": str(root), "dataset_partition": "data/partitions/SynGait-small.json", "num_workers": workers}
    trainer_cfg = {"sampler": {"batch_size": [8, 8], "sample_type": "fixed_ordered", "frames_num_fixed": 30,
                               "batch_shuffle": True}, "transform": {"type": "BaseSilCuttingTransform", "img_w": 32}}
    loader = iter(build_loader(data_cfg, trainer_cfg, train=True))
    next(loader)
    started = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return batches * 64 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="generation processes assumed and loader workers")
    parser.add_argument("--sequences", type=int, default=22, help="sequences sampled per preset")
    parser.add_argument("--fresh", action="store_true", help="time making the small set from scratch (in a temp folder)")
    args = parser.parse_args()
    rows = []
    default_rate, default_seqs = bench_generation("default", args.sequences)
    small_rate, small_seqs = bench_generation("small", args.sequences)
    mean_len = np.mean([len(s) for s in default_seqs])
    total = 124 * len(CONDITIONS) * len(VIEWS)
    rows.append(("generate default, 1 core", f"{default_rate:,.0f} raw frames/s", f"mean {mean_len:.0f} frames/seq"))
    rows.append((f"generate default, {total:,} seqs", f"~{total * mean_len / default_rate / args.workers / 60:.0f} min",
                 f"extrapolated, {args.workers} workers, no PNG writing"))
    rows.append(("generate small, 1 core", f"{small_rate:,.0f} raw frames/s", f"render_scale {PRESETS['small'].render_scale}"))
    for img_size in (64, 32):
        rate = bench_preprocess(default_seqs, img_size)
        rows.append((f"pretreat to {img_size}x{img_size}, 1 core", f"{rate:,.0f} frames/s", "in memory"))
    if args.fresh:
        with tempfile.TemporaryDirectory() as tmp:
            kept, paths.SYNGAIT_ROOT = paths.SYNGAIT_ROOT, Path(tmp)
            started = time.perf_counter()
            ensure_syngait("small", img_size=32, workers=args.workers)
            rows.append(("make small set (ensure_syngait)", f"{time.perf_counter() - started:.1f} s",
                         f"render + pretreat, {args.workers} workers"))
            paths.SYNGAIT_ROOT = kept
    rows.append((f"training loader, {args.workers} workers", f"{bench_loader(args.workers):,.0f} sequences/s",
                 "[8, 8] x 30 frames of 32x22"))
    width = max(len(r[0]) for r in rows)
    print(f"{'what':{width}}  {'speed':>22}  note")
    for what, speed, note in rows:
        print(f"{what:{width}}  {speed:>22}  {note}")


if __name__ == "__main__":
    main()
