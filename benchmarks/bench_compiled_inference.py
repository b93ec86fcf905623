"""What ``evaluator_cfg.compile`` buys: test sequences of several lengths, eager against compiled.

    python benchmarks/bench_compiled_inference.py [--no-paper]

Embeds one sequence at a time, of the lengths in ``LENGTHS`` (test sequences differ
in length), with the plain path (the original code's computation), the fast path
and the fast path through ``torch.compile(model, dynamic=True)``, as the evaluator
runs it. The first compiled call compiles (inductor's cache starts empty); the later
lengths show whether it compiles again (it should not: the shapes are dynamic). Prints
seconds per call and the compiled path's ratio to the other two.
"""
from __future__ import annotations

import argparse
import copy
import os
import tempfile

import torch

from bench_speed import CONFIGS, timed
from hstl_core import build_model
from hstl_core.model.hstl import set_fast_path

LENGTHS = (80, 72, 95, 80, 88)


@torch.no_grad()
def bench_config(name: str) -> None:
    """One row per sequence length for ``CONFIGS[name]``."""
    model_cfg, shape = CONFIGS[name]
    torch.manual_seed(0)
    fast = build_model(model_cfg).eval()
    paths = {"plain": set_fast_path(copy.deepcopy(fast), False).eval(), "fast": fast,
             "compiled": torch.compile(fast, dynamic=True)}
    for length in LENGTHS:
        sils = (torch.rand(1, length, *shape[2:]) > 0.5).float()
        seq_len = torch.tensor([length])
        times = {label: timed(lambda: model(sils, seqL=seq_len), 1, sils.device, warmup=False)
                 for label, model in paths.items()}
        print(f"{name:5} {length:6} {times['plain']:8.3f} {times['fast']:8.3f} {times['compiled']:10.3f} "
              f"{times['plain'] / times['compiled']:15.2f}x {times['fast'] / times['compiled']:14.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-paper", action="store_true", help="only the small config")
    args = parser.parse_args()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_compiled_inference_")
    print(f"one packed sequence per call, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'model':5} {'frames':>6} {'plain s':>8} {'fast s':>8} {'compiled s':>10} "
          f"{'plain/compiled':>16} {'fast/compiled':>15}")
    for name in ("small",) if args.no_paper else ("small", "paper"):
        bench_config(name)
    print("the first compiled call of each model includes compiling")


if __name__ == "__main__":
    main()
