"""Iteration-based training of HSTL from an OpenGait config (OpenGait's
``BaseModel.run_train`` and ``train_step``, ``lib/modeling/base_model.py``).

One step: a P x K batch of fixed-length clips, forward (under autocast when asked),
triplet + cross-entropy losses, backward, optimizer and scheduler step. Every
``log_iter`` steps a console line and TensorBoard scalars, every ``save_iter`` steps
an atomic checkpoint (rank 0) and, with ``with_test``, a full evaluation.

Differences from the original engine, on purpose:
* every optimizer step counts: the original did not count a fp16 step whenever the
  grad scaler's scale changed, which also happens when the scale *grows*;
* batches are a pure function of (seed, iteration), so a resumed run sees exactly the
  batches an uninterrupted run would have seen;
* SyncBN is used where it exists (CUDA); gloo on CPUs keeps per-rank BatchNorm with
  the statistics of rank 0 broadcast by DDP.
"""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from hstl_core.data.sampling import build_loader
from hstl_core.engine.checkpoints import checkpoint_path, restore, run_dir, save_checkpoint
from hstl_core.engine.distributed import DistInfo, all_gather_objects, broadcast_buffers
from hstl_core.engine.evaluator import autocast_dtype, autocast_for, evaluate_model, first_compiled_call
from hstl_core.losses import LossAggregator
from hstl_core.model import build_model
from hstl_core.seed import seed_everything

log = logging.getLogger("hstl")


def build_optimizer(model: torch.nn.Module, optimizer_cfg: dict) -> torch.optim.Optimizer:
    """``optimizer_cfg['solver']`` from ``torch.optim`` with the other keys as arguments."""
    kwargs = {k: v for k, v in optimizer_cfg.items() if k != "solver"}
    params = [p for p in model.parameters() if p.requires_grad]
    return getattr(torch.optim, optimizer_cfg["solver"])(params, **kwargs)


def build_scheduler(optimizer: torch.optim.Optimizer, scheduler_cfg: dict) -> torch.optim.lr_scheduler.LRScheduler:
    """``scheduler_cfg['scheduler']`` from ``torch.optim.lr_scheduler``, stepped per iteration."""
    kwargs = {k: v for k, v in scheduler_cfg.items() if k != "scheduler"}
    return getattr(torch.optim.lr_scheduler, scheduler_cfg["scheduler"])(optimizer, **kwargs)


def weight_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every learned parameter: equal digests mean identical weights.

    Buffers are left out: without SyncBN (CPU), each rank's BatchNorm running
    statistics follow its own last batch until DDP broadcasts rank 0's at the next
    forward; checkpoints hold rank 0's.
    """
    digest = hashlib.sha256()
    for name, tensor in model.named_parameters():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_class_num(model_cfg: dict, train_ids: list[str]) -> None:
    """Refuse ``model_cfg.class_num`` below the number of training ids (the loss would index past it).

    GaitBase and DeepGaitV2 keep OpenGait's ``model_cfg``, where it is ``SeparateBNNecks.class_num``.
    """
    class_num = model_cfg["class_num"] if "class_num" in model_cfg else model_cfg["SeparateBNNecks"]["class_num"]
    if class_num < len(train_ids):
        raise ValueError(
            f"model_cfg.class_num is {class_num} but the training set has {len(train_ids)} ids; "
            f"set class_num to at least {len(train_ids)}"
        )


class Trainer:
    """Everything one training process needs, built from a merged config."""

    def __init__(self, cfg: dict, info: DistInfo, output_root: str | Path = "output") -> None:
        self.cfg = cfg
        self.info = info
        self.output_root = Path(output_root)
        self.engine = cfg["trainer_cfg"]
        self.run_dir = run_dir(cfg, "train", output_root)
        seed_everything(self.engine.get("seed", 0))
        model = build_model(cfg["model_cfg"]).to(info.device)
        use_sync_bn = info.distributed and self.engine.get("sync_BN", False) and info.device.type == "cuda"
        if use_sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        self.optimizer = build_optimizer(model, cfg["optimizer_cfg"])
        self.scheduler = build_scheduler(self.optimizer, cfg["scheduler_cfg"])
        self.iteration, restored = restore(cfg, "train", model, self.optimizer, self.scheduler, output_root)
        self.ddp = (
            DistributedDataParallel(model, device_ids=[info.device] if info.device.type == "cuda" else None)
            if info.distributed
            else model
        )
        self.losses = LossAggregator(cfg["loss_cfg"]).to(info.device)
        fp16 = autocast_dtype(info.device, self.engine) == torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        self.forward = torch.compile(self.ddp) if self.engine.get("compile", False) else self.ddp
        self.compile_pending = self.forward is not self.ddp
        self.loader = build_loader(
            cfg["data_cfg"], self.engine, train=True, rank=info.rank, world_size=info.world_size,
            seed=self.engine.get("seed", 0), start_iteration=self.iteration,
        )
        check_class_num(cfg["model_cfg"], self.loader.dataset.dataset.label_set)
        # Events after the resumed checkpoint are dropped; the step it was saved at stays.
        self.writer = SummaryWriter(self.run_dir / "summary", purge_step=self.iteration + 1) if info.is_main else None
        if info.is_main:
            params = sum(p.numel() for p in model.parameters())
            log.info(
                "model %s: %s parameters; %d process(es), backend %s, device %s, SyncBN %s%s",
                cfg["model_cfg"]["model"], f"{params:,}", info.world_size, info.backend or "none",
                info.device, "on" if use_sync_bn else "off",
                f"; resumed from {restored}" if restored else "",
            )

    def step(self, batch: dict) -> dict[str, float]:
        """One optimisation step on one batch; returns the logged scalars."""
        sils = batch["sils"].to(self.info.device, non_blocking=True)
        labels = batch["labels"].to(self.info.device, non_blocking=True)
        first_compiled, started = self.compile_pending, time.perf_counter()
        with autocast_for(self.info.device, self.engine):
            outputs = self.compiled_forward(sils) if self.compile_pending else self.forward(sils)
        outputs = {k: v.float() for k, v in outputs.items() if k in ("embeddings", "logits")}
        total, scalars = self.losses(outputs, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        clip = self.engine.get("clip_grad_norm")
        if clip:
            self.scaler.unscale_(self.optimizer)
            scalars["scalar/grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if first_compiled and self.info.is_main:
            log.info("torch.compile: first training step took %.1f s (compiling forward and backward included)",
                     time.perf_counter() - started)
        self.iteration += 1
        self.scheduler.step()
        scalars["scalar/learning_rate"] = self.optimizer.param_groups[0]["lr"]
        return scalars

    def compiled_forward(self, sils: torch.Tensor) -> dict[str, torch.Tensor]:
        """The first forward under ``trainer_cfg.compile``, which compiles it.

        A failure to compile is raised as one RuntimeError that names the option.
        """
        outputs = first_compiled_call("trainer_cfg.compile", "training step", lambda: self.forward(sils))
        self.compile_pending = False
        return outputs

    def train(self, on_log: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
        """Train until ``total_iter``; return the last logged scalars, checkpoint and tests.

        ``on_log(iteration, scalars)`` is called at every ``log_iter`` with the scalars
        averaged since the previous call (a notebook draws its live curves with it).
        """
        total = self.engine["total_iter"]
        log_iter, save_iter = self.engine["log_iter"], self.engine["save_iter"]
        self.train_mode()
        window: list[dict[str, float]] = []
        last_scalars: dict[str, float] = {}
        last_checkpoint: Path | None = None
        tests: dict[int, Any] = {}
        started = time.perf_counter()
        bar = tqdm(total=total, initial=self.iteration, desc="train", disable=None if self.info.is_main else True, leave=False)
        batches = iter(self.loader)
        while self.iteration < total:
            window.append(self.step(next(batches)))
            bar.update(1)
            if self.iteration % log_iter == 0 or self.iteration == total:
                last_scalars = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
                self._log(last_scalars, time.perf_counter() - started)
                if on_log is not None:
                    on_log(self.iteration, last_scalars)
                window, started = [], time.perf_counter()
            if self.iteration % save_iter == 0 or self.iteration == total:
                last_checkpoint = self.save()
                if self.engine.get("with_test", False):
                    tests[self.iteration] = self.test()
        bar.close()
        if self.writer is not None:
            self.writer.close()
        digests = all_gather_objects(weight_digest(self.model), self.info)
        if self.info.is_main:
            agree = "identical" if len(set(digests)) == 1 else "DIFFERENT"
            log.info("weights after training: %s on %d rank(s) (sha256 %s)", agree, len(digests), digests[0][:12])
        return {
            "iteration": self.iteration, "scalars": last_scalars, "checkpoint": last_checkpoint,
            "tests": tests, "rank_weight_digests": digests,
        }

    def save(self) -> Path:
        """Rank 0 writes the checkpoint atomically; every rank gets its path."""
        path = checkpoint_path(self.cfg, self.iteration, "train", self.output_root)
        if self.info.is_main:
            save_checkpoint(self.model, path, self.iteration, self.optimizer, self.scheduler)
            log.info("saved checkpoint %s", path)
        return path

    def test(self) -> dict[str, Any]:
        """A full evaluation with the current weights (``with_test``), then back to training."""
        broadcast_buffers(self.model, self.info)
        result = evaluate_model(self.cfg, self.model, self.info)
        if self.writer is not None and result is not None:
            for condition, value in result.get("summary", {}).items():
                self.writer.add_scalar(f"scalar/test_accuracy/{condition}", value, self.iteration)
        self.train_mode()
        return result

    def train_mode(self) -> None:
        """Training mode, with every BatchNorm kept in eval mode when ``fix_BN`` is set."""
        self.ddp.train()
        if self.engine.get("fix_BN", False):
            for module in self.model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def _log(self, scalars: dict[str, float], seconds: float) -> None:
        if not self.info.is_main:
            return
        total = self.engine["total_iter"]
        shown = ", ".join(f"{k.removeprefix('scalar/').replace('/', '_')}={v:.4f}" for k, v in scalars.items())
        log.info("Iteration %05d/%05d, Cost %.2f s, %s", self.iteration, total, seconds, shown)
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, self.iteration)
