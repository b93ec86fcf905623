"""The checks only a GPU machine can make: CUDA, NCCL, SyncBN, fp16 AMP, speed.

    python scripts/gpu_check.py [--iterations 40]

1. the paper's CASIA-B model: forward and training-step time on the GPU, fp32 and
   fp16 autocast, with the GFLOP/s they reach;
2. a real ``launch`` of training on every visible GPU (torchrun, NCCL, DDP, SyncBN,
   fp16 with a grad scaler) with the paper's architecture on SynGait 64 x 44
   silhouettes, then ``launch`` of the test phase (fp16 inference, gathered
   features, the CASIA-B protocol).
Prints one report; exits non-zero if a check fails. Not part of CI (CI has no GPU).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch

from hstl_core import build_model, config
from hstl_core.data.syngait import ensure_syngait
from hstl_core.engine import launch
from hstl_core.losses import LossAggregator
from hstl_core.model import summary
from hstl_core.paths import CONFIG_ROOT, OUTPUT_ROOT


def time_steps(model_cfg: dict, batch: int, fp16: bool, repeats: int = 5) -> tuple[float, float]:
    """Median seconds of (forward in eval mode, one training step) for ``batch`` 30-frame clips."""
    device = torch.device("cuda")
    model = build_model(model_cfg).to(device)
    sils = torch.rand(batch, 30, 64, 44, device=device)
    labels = torch.arange(batch, device=device) % (batch // 4)
    losses = LossAggregator([{"type": "TripletLoss", "margin": 0.2}, {"type": "CrossEntropyLoss", "scale": 1, "label_smooth": False}])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)

    def forward() -> None:
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=fp16):
            model(sils)

    def step() -> None:
        model.train()
        with torch.autocast("cuda", dtype=torch.float16, enabled=fp16):
            outputs = model(sils)
        total, _ = losses({k: v.float() for k, v in outputs.items() if k in ("embeddings", "logits")}, labels)
        optimizer.zero_grad()
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()

    timings = []
    for fn in (forward, step):
        fn()
        runs = []
        for _ in range(repeats):
            torch.cuda.synchronize()
            started = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            runs.append(time.perf_counter() - started)
        timings.append(statistics.median(runs))
    return timings[0], timings[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here")
        return 1
    print(f"torch {torch.__version__}, {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}")

    paper = {"model": "HSTL", "channels": [32, 64, 128], "class_num": 74}
    gflops = summary(build_model(paper), (1, 30, 64, 44)).total_flops / 1e9
    batch = 64
    for fp16 in (False, True):
        forward, step = time_steps(paper, batch, fp16)
        print(
            f"paper model, batch {batch} x 30 x 64 x 44, {'fp16 autocast' if fp16 else 'fp32'}: "
            f"forward {forward * 1000:.1f} ms ({batch * gflops / forward / 1000:.1f} TFLOP/s), "
            f"training step {step * 1000:.1f} ms"
        )

    ensure_syngait("small", img_size=64, workers=8)
    cfg = config.load(CONFIG_ROOT / "hstl.yaml")
    small = config.load(CONFIG_ROOT / "syngait_small.yaml")
    cfg["data_cfg"] = copy.deepcopy(small["data_cfg"]) | {"dataset_root": "data/syngait/small-64", "num_workers": 4}
    cfg["model_cfg"]["class_num"] = small["model_cfg"]["class_num"]
    cfg["trainer_cfg"].update(total_iter=args.iterations, save_iter=args.iterations, log_iter=10, save_name="gpu_check")
    cfg["trainer_cfg"]["sampler"]["batch_size"] = [8, 4]
    cfg["evaluator_cfg"].update(save_name="gpu_check", restore_hint=args.iterations, enable_float16=True)
    cfg["evaluator_cfg"]["sampler"]["batch_size"] = 8 * torch.cuda.device_count()
    started = time.perf_counter()
    trained = launch(cfg, phase="train", output_root=OUTPUT_ROOT)
    seconds = time.perf_counter() - started
    print(f"launch train: {trained['plan']}, {trained['iteration']} iterations in {seconds:.1f} s (start-up included)")
    print(f"  last scalars: { {k: round(v, 4) for k, v in trained['scalars'].items()} }")
    print(f"  ranks agree on weights: {len(set(trained['rank_weight_digests'])) == 1}")
    started = time.perf_counter()
    tested = launch(cfg, phase="test", output_root=OUTPUT_ROOT, quiet=True)
    print(f"launch test: {time.perf_counter() - started:.1f} s, rank-1 summary {tested['summary']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
