"""Plain (the original code's path) against the fast path, side by side in one process.

    python benchmarks/bench_speed.py [--repeats 3] [--no-paper] [--bf16] [--compile]

For the small CPU config and the paper's CASIA-B model, with the same weights: a
training step (forward, triplet + cross-entropy, backward, Adam) on a batch of
clips, and inference of one 80-frame sequence, in fp32 and (where the CPU has
native bf16, or on a GPU) under bf16 autocast; on a GPU also fp16 (with a grad
scaler) and TF32 for the fp32 rows. Prints seconds (median of
``repeats``), the fast/plain ratio and the achieved GFLOP/s (analytic FLOPs from
``hstl_core.model.summary``; a training step counts 3 x the forward) next to the
measured rate of one 64-channel Conv3d in both layouts, the machine's practical
conv peak: forward + backward for the training rows, the forward alone for
inference. With ``--compile`` it also times the fast path through
``torch.compile`` (the first call, compiling included, and then the same median;
inductor's cache starts empty, so the first call compiles from scratch). On a CPU
it also measures the fp32 arithmetic ceiling, the fused multiply-add rate of
``fma_peak.c`` (compiled with ``cc`` where one exists), and says what rate 1.5x
the plain path would need in each fp32 row: above the ceiling, no implementation
of the same arithmetic can reach it on this CPU (``bench_conv_algorithms.py`` times
algorithms with fewer multiplications). FLOPs are nominal (a convolution's taps on its
zero padding count too), so a convolution can show slightly more than 100 % of the
FMA peak. Timings
are disturbed by whatever else runs: the ratios, measured in turn on the same
machine, are the figures to read.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from hstl_core import build_model
from hstl_core.losses import LossAggregator
from hstl_core.model import summary
from hstl_core.model.hstl import set_fast_path

CONFIGS = {
    "small": ({"model": "HSTL", "channels": [8, 16, 32], "class_num": 14, "input_height": 32}, (8, 20, 32, 22)),
    "paper": ({"model": "HSTL", "channels": [32, 64, 128], "class_num": 74}, (8, 30, 64, 44)),
}
LOSSES = [{"type": "TripletLoss", "margin": 0.2}, {"type": "CrossEntropyLoss", "scale": 1, "label_smooth": False}]
INFERENCE_FRAMES = 80
GOAL = 1.5
"""The fp32 speed-up over the plain path that issue 9 asks for."""
PRECISION = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
"""Column label of each autocast dtype (None: no autocast)."""


def native_bf16(device: torch.device) -> bool:
    """True where bf16 convolutions run on hardware support (CUDA, AVX-512 BF16, AMX)."""
    if device.type == "cuda":
        return True
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def timed(fn: Callable[[], None], repeats: int, device: torch.device, warmup: bool = True) -> float:
    """Median seconds of ``repeats`` calls (after one untimed call when ``warmup``)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def conv_peak(
    device: torch.device, dtype: torch.dtype | None, channels_last: bool, backward: bool = True, batch: int = 2
) -> float:
    """GFLOP/s of one 64-channel 3 x 3 x 3 Conv3d on [batch, 64, 30, 32, 22]: forward +
    backward (the reference for a training step), or the forward alone (for inference).

    A peak, so the fastest of 5 calls (after one warm-up) counts: a call slowed by
    other work on the machine does not lower it."""
    conv = torch.nn.Conv3d(64, 64, 3, padding=1, bias=False).to(device)
    x = torch.randn(batch, 64, 30, 32, 22, device=device)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    x.requires_grad_(backward)

    def step() -> None:
        with torch.set_grad_enabled(backward), torch.autocast(
            device.type, dtype=dtype or torch.float32, enabled=dtype is not None
        ):
            y = conv(x)
        if backward:
            y.float().sum().backward()

    flops = (3 if backward else 1) * 2 * x.numel() * 64 * 27
    fastest = min(timed(step, 1, device, warmup=call == 0) for call in range(5))
    return flops / fastest / 1e9


def fma_peak(threads: int) -> float | None:
    """GFLOP/s of fp32 fused multiply-adds on ``threads`` threads (``fma_peak.c``).

    None, with the reason printed, where the program cannot be built or run (no C
    compiler with OpenMP, or a CPU that is not x86-64 with AVX2 + FMA)."""
    source = Path(__file__).with_name("fma_peak.c")
    with tempfile.TemporaryDirectory(prefix="fma_peak_") as folder:
        binary = Path(folder) / "fma_peak"
        try:
            subprocess.run(["cc", "-O2", "-fopenmp", str(source), "-o", str(binary)],
                           check=True, capture_output=True, text=True)
            result = subprocess.run([str(binary)], check=True, capture_output=True, text=True,
                                    env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", None) or error
            print(f"FMA peak not measured: {source.name}: {str(detail).strip().splitlines()[-1]}")
            return None
    rate, isa, used = result.stdout.split()
    print(f"FMA peak ({source.name}, {isa}, {used} threads): {float(rate):.1f} GFLOP/s")
    return float(rate)


def bench_config(
    name: str, repeats: int, device: torch.device, dtypes: list[torch.dtype | None], compiled: bool = False
) -> list[tuple]:
    """Rows (what, precision, seconds by path, fast GFLOP/s) for one config.

    The paths are ``plain`` and ``fast``, and with ``compiled`` also ``compiled``
    (the fast model through ``torch.compile``) and ``compiling`` (its first call).
    """
    model_cfg, shape = CONFIGS[name]
    torch.manual_seed(0)
    fast = build_model(model_cfg).to(device)
    plain = set_fast_path(copy.deepcopy(fast), False)
    models = {"plain": plain, "fast": fast}
    if compiled:
        models["compiled"] = torch.compile(fast)
    gflops_per_frame = summary(fast, (1, 30, *shape[2:])).total_flops / 1e9 / 30
    sils = (torch.rand(shape, device=device) > 0.5).float()
    sequence = (torch.rand(1, INFERENCE_FRAMES, *shape[2:], device=device) > 0.5).float()
    labels = torch.arange(shape[0], device=device) // 2
    losses = LossAggregator(LOSSES)
    optimizers = {id(m): torch.optim.Adam(m.parameters(), lr=1e-4) for m in models.values()}
    many = name == "small"
    rows = []
    for dtype in dtypes:
        precision = PRECISION[dtype]
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

        def train_step(model: torch.nn.Module) -> Callable[[], None]:
            def run() -> None:
                model.train()
                with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    outputs = model(sils)
                total, _ = losses({k: v.float() for k, v in outputs.items()}, labels)
                optimizers[id(model)].zero_grad(set_to_none=True)
                scaler.scale(total).backward()
                scaler.step(optimizers[id(model)])
                scaler.update()

            return run

        def inference(model: torch.nn.Module) -> Callable[[], None]:
            def run() -> None:
                model.eval()
                with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    model(sequence)

            return run

        for what, make, frames, factor in (
            (f"train step {list(shape)}", train_step, shape[0] * shape[1], 3),
            (f"inference [1, {INFERENCE_FRAMES}, {shape[2]}, {shape[3]}]", inference, INFERENCE_FRAMES, 1),
        ):
            reps = repeats if many else 1
            seconds = {}
            for label, model in models.items():
                if label == "compiled":
                    seconds["compiling"] = timed(make(model), 1, device, warmup=False)
                seconds[label] = timed(make(model), reps, device, warmup=many or what.startswith("inference"))
            rate = factor * frames * gflops_per_frame / seconds["fast"]
            rows.append((f"{name} {what}", precision, seconds, rate))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the small config (the paper's: 1)")
    parser.add_argument("--no-paper", action="store_true", help="leave out the paper's model (about 2 minutes on 2 cores)")
    parser.add_argument("--bf16", action="store_true", help="time bf16 even where the CPU emulates it (very slow)")
    parser.add_argument("--compile", action="store_true", help="also time the fast path through torch.compile")
    args = parser.parse_args()
    if args.compile:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_speed_inductor_")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = native_bf16(device)
    native: list[torch.dtype | None] = [torch.bfloat16] if bf16 else []
    if device.type == "cuda":
        native.append(torch.float16)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        print("CUDA: fp32 rows use TF32 (convolutions and matrix products); fp16 rows a grad scaler")
    dtypes: list[torch.dtype | None] = [None] + (native or ([torch.bfloat16] if args.bf16 else []))
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {'yes' if bf16 else 'no'}")
    ceiling = fma_peak(torch.get_num_threads()) if device.type == "cpu" else None
    peaks = {}
    for backward in (True, False):
        rates = {f"{'cl3d' if cl else 'ncdhw'} {PRECISION[dt]}": conv_peak(device, dt, cl, backward)
                 for dt in dtypes for cl in (False, True)}
        peak = max(rates.values())
        of_ceiling = f" (fastest: {100 * peak / ceiling:.0f} % of the FMA peak)" if ceiling else ""
        print(f"Conv3d 64->64 {'fwd+bwd' if backward else 'fwd    '} [2, 64, 30, 32, 22]: "
              + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in rates.items()) + of_ceiling)
        peaks["train" if backward else "inference"] = peak
    rows = bench_config("small", args.repeats, device, dtypes, args.compile)
    if not args.no_paper:
        rows += bench_config("paper", args.repeats, device, [None] + native, args.compile)
    width = max(len(r[0]) for r in rows)
    compiled = f" {'compiled s':>10} {'vs fast':>8} {'1st call s':>10}" if args.compile else ""
    print(f"{'what':{width}}  {'prec':5} {'plain s':>8} {'fast s':>8} {'speed-up':>8} {'fast GFLOP/s':>12} "
          f"{'% conv peak':>11}{' % FMA peak' if ceiling else ''}{compiled}")
    for what, precision, seconds, rate in rows:
        plain_s, fast_s = seconds["plain"], seconds["fast"]
        peak = peaks["inference" if " inference " in what else "train"]
        compiled = (f" {seconds['compiled']:10.3f} {fast_s / seconds['compiled']:7.2f}x {seconds['compiling']:10.1f}"
                    if args.compile else "")
        of_ceiling = f" {100 * rate / ceiling:10.0f}%" if ceiling else ""
        print(f"{what:{width}}  {precision:5} {plain_s:8.3f} {fast_s:8.3f} {plain_s / fast_s:7.2f}x {rate:12.1f} "
              f"{100 * rate / peak:10.0f}%{of_ceiling}{compiled}")
    if ceiling:
        for what, precision, seconds, rate in rows:
            if precision == "fp32":
                needed = rate * seconds["fast"] * GOAL / seconds["plain"]
                print(f"{what}: {GOAL}x plain needs {needed:.1f} GFLOP/s, {100 * needed / ceiling:.0f} % of the FMA peak")
    if not bf16 and not args.bf16:
        print("bf16 not timed: this CPU has no AVX-512 BF16 / AMX, so bf16 convolutions take a slow "
              "reference path (several times slower than fp32); --bf16 times it anyway")


if __name__ == "__main__":
    main()
