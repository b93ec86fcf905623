"""Where the time of one forward (or training step) goes, by kind of operation.

``profile_step(model, sils)`` runs the step once to warm up, once under
``torch.profiler`` and sums each operator's own time (time spent in its children
not included, so nothing is counted twice) into a few categories a reader can act
on: convolutions (the FLOPs), matrix products, copies and layout changes (``cat``,
``copy_``, ``fill_``: pure memory traffic), pooling and max, activations, and other
element-wise work and reductions. Times are CPU times of the calling thread's
operators; on a GPU they are launch times, not kernel times.

PyTorch's Kineto profiler writes log lines straight to the C-level standard error
when it starts and stops ("USDT: ... profiler_start", "STAGE: ...", and on a machine
without a GPU "gpuGetDeviceCount failed with code 35"). ``native_stderr_silenced``
sends file descriptor 2 to the null device around exactly those two calls, so a
notebook cell or ``make bench`` shows only the table.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("convolution", ("conv",)),
    ("matrix product", ("bmm", "matmul", "addmm", "::mm", "linear")),
    ("copy / cat / fill", ("copy", "cat", "fill", "zero", "clone", "contiguous", "_to_copy", "empty", "index", "repeat")),
    ("pooling / max", ("pool", "max", "amax")),
    ("leaky ReLU", ("leaky_relu",)),
)
"""(category, substrings of operator names) in matching order; the rest is ``element-wise / other``."""
OTHER = "element-wise / other"


def category_of(op_name: str) -> str:
    """The category of one ``aten::`` operator name (first match in ``CATEGORIES``)."""
    for category, keys in CATEGORIES:
        if any(key in op_name for key in keys):
            return category
    return OTHER


@dataclass
class ProfileTable:
    """Milliseconds per category of one profiled step; ``str()`` is a printable table.

    ``operators`` holds the same self times per ``aten::`` operator (name without
    the prefix), the detail behind each category.
    """

    what: str
    milliseconds: dict[str, float]
    operators: dict[str, float] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return sum(self.milliseconds.values())

    def percent(self, category: str) -> float:
        return 100.0 * self.milliseconds[category] / self.total_ms

    def top_operators(self, count: int = 5) -> list[tuple[str, float]]:
        """The ``count`` operators with the most self time, as ``(name, ms)``, largest first."""
        return sorted(self.operators.items(), key=lambda item: -item[1])[:count]

    def __str__(self) -> str:
        lines = [f"{self.what}: {self.total_ms:.0f} ms in operators", f"{'category':<22} {'ms':>9} {'%':>6}"]
        for category, ms in sorted(self.milliseconds.items(), key=lambda item: -item[1]):
            lines.append(f"{category:<22} {ms:9.1f} {self.percent(category):6.1f}")
        return "\n".join(lines)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at the null device for the duration of the block.

    Catches what C/C++ code writes to stderr (Kineto's logger writes there directly,
    below Python's ``sys.stderr``), which ``contextlib.redirect_stderr`` cannot.
    The original descriptor is restored on exit, also when the block raises. Fd 2
    is process-wide: keep the block short (here: the profiler's start and stop),
    since other threads' stderr is lost while it runs.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def default_loss(outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """A stand-in loss touching both outputs the training losses read."""
    return outputs["embeddings"].float().pow(2).mean() + outputs["logits"].float().logsumexp(-1).mean()


def profile_step(
    model: nn.Module,
    sils: torch.Tensor,
    train: bool = True,
    loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor] = default_loss,
    autocast_dtype: torch.dtype | None = None,
) -> ProfileTable:
    """Profile one step of ``model`` on ``sils [n, s, h, w]``.

    ``train``: forward + ``loss_fn(outputs).backward()`` in train mode (gradients
    are left in ``.grad``; no optimizer step), else a no-grad eval forward.
    ``autocast_dtype`` (e.g. ``torch.bfloat16``) runs the forward under autocast.
    The model's train/eval mode is restored afterwards.
    """
    device = sils.device
    was_training = model.training
    model.train(train)

    def step() -> None:
        grad = contextlib.nullcontext() if train else torch.no_grad()
        cast = torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None)
        with grad:
            with cast:
                outputs = model(sils)
            if train:
                loss_fn(outputs).backward()

    try:
        step()
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        prof = profile(activities=activities)
        with native_stderr_silenced():
            prof.start()
        try:
            step()
        finally:
            with native_stderr_silenced():
                prof.stop()
    finally:
        model.train(was_training)
    milliseconds: dict[str, float] = {}
    operators: dict[str, float] = {}
    for event in prof.key_averages():
        if not event.key.startswith("aten::"):
            continue
        name = event.key.removeprefix("aten::")
        ms = event.self_cpu_time_total / 1000.0
        operators[name] = operators.get(name, 0.0) + ms
        category = category_of(name)
        milliseconds[category] = milliseconds.get(category, 0.0) + ms
    precision = "fp32" if autocast_dtype is None else str(autocast_dtype).removeprefix("torch.")
    what = f"{'training step' if train else 'inference'} {list(sils.shape)} {precision}"
    return ProfileTable(what=what, milliseconds=milliseconds, operators=operators)
