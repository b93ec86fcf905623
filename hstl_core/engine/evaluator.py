"""Inference over the test set and the dataset's protocol (OpenGait's ``BaseModel.inference``,
``lib/modeling/base_model.py``).

Each rank embeds its share of the test sequences (whole sequences, several packed
in one batch with their lengths ``seqL``), the features are gathered on every rank,
and rank 0 runs the evaluation function named by ``evaluator_cfg.eval_func``.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from hstl_core.data.sampling import build_loader
from hstl_core.engine.distributed import DistInfo, all_gather_objects
from hstl_core.evaluation import evaluate, format_casia_b_table
from hstl_core.paths import resolve_data_path

log = logging.getLogger("hstl")
T = TypeVar("T")

GAIT3D_SUMMARY = ("Rank-1", "Rank-5", "mAP", "mINP")
"""Headline numbers of a Gait3D-protocol result (Gait3D, SynGait-Wild) kept in ``"summary"``."""


def autocast_dtype(device: torch.device, engine_cfg: dict) -> torch.dtype | None:
    """The autocast dtype an engine config asks for on ``device``, None for fp32.

    ``enable_bfloat16``: bf16 on a CPU or a GPU (no grad scaler needed: bf16 has
    float32's range). Otherwise ``enable_float16``: fp16 on CUDA (the trainer adds a
    grad scaler); ignored on a CPU.
    """
    if device.type in ("cpu", "cuda") and engine_cfg.get("enable_bfloat16", False):
        return torch.bfloat16
    if device.type == "cuda" and engine_cfg.get("enable_float16", False):
        return torch.float16
    return None


def autocast_for(device: torch.device, engine_cfg: dict) -> Any:
    """``torch.autocast`` with ``autocast_dtype``'s choice, or a no-op context for fp32."""
    dtype = autocast_dtype(device, engine_cfg)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def first_compiled_call(option: str, what: str, call: Callable[[], T]) -> T:
    """Run the call that compiles a ``torch.compile`` model and return its result.

    A failure to compile becomes one RuntimeError that names the config ``option``
    (``trainer_cfg.compile``, ``evaluator_cfg.compile``) and how to turn it off.
    """
    try:
        return call()
    except Exception as error:
        raise RuntimeError(
            f"{option}: torch.compile failed on the first {what} ({type(error).__name__}: {error}); "
            f"set {option}: false to run in eager mode"
        ) from error


@torch.no_grad()
def extract_embeddings(cfg: dict, model: torch.nn.Module, info: DistInfo) -> dict[str, Any]:
    """Embed the whole test set; every rank returns all of it, sorted by (id, type, view).

    A sequence is identified by its (id, type, view) folder, so the copies that the
    inference sampler adds to even out the ranks' shares are counted once.

    With ``evaluator_cfg.compile`` the model runs through ``torch.compile`` with dynamic
    shapes (test sequences differ in length, so one compilation serves them all); the
    first batch's time, compiling included, goes to the log.

    Returns ``{"embeddings": float32 [N, parts, c], "labels", "types", "views": N strings}``.
    """
    engine = cfg["evaluator_cfg"]
    loader = build_loader(cfg["data_cfg"], engine, train=False, rank=info.rank, world_size=info.world_size)
    was_training = model.training
    model.eval()
    compile_pending = engine.get("compile", False)
    forward = torch.compile(model, dynamic=True) if compile_pending else model
    mine: dict[tuple[str, str, str], np.ndarray] = {}
    for batch in tqdm(loader, desc="embed", disable=None if info.is_main else True, leave=False):
        seq_len = batch["seqL"].to(info.device) if batch["seqL"] is not None else None
        sils, started = batch["sils"].to(info.device), time.perf_counter()
        with autocast_for(info.device, engine):
            if compile_pending:
                outputs = first_compiled_call("evaluator_cfg.compile", "test batch", lambda: forward(sils, seqL=seq_len))
                if info.is_main:
                    log.info("torch.compile: first test batch took %.1f s (compiling included)",
                             time.perf_counter() - started)
                compile_pending = False
            else:
                outputs = forward(sils, seqL=seq_len)
        embeddings = outputs["embeddings"].float().cpu().numpy()
        for row, key in enumerate(zip(batch["ids"], batch["types"], batch["views"])):
            mine[key] = embeddings[row]
    model.train(was_training)
    merged: dict[tuple[str, str, str], np.ndarray] = {}
    for part in all_gather_objects(mine, info):
        merged.update(part)
    keys = sorted(merged)
    return {
        "embeddings": np.stack([merged[k] for k in keys]).astype(np.float32),
        "labels": [k[0] for k in keys],
        "types": [k[1] for k in keys],
        "views": [k[2] for k in keys],
    }


def evaluate_model(cfg: dict, model: torch.nn.Module, info: DistInfo) -> dict[str, Any] | None:
    """Embed the test set and run the protocol; the result on rank 0, None elsewhere.

    The result is the protocol's dict plus ``"summary"``: one headline number per
    probe set (CASIA-B / SynGait: NM, BG, CL rank-1 with identical views excluded).
    """
    features = extract_embeddings(cfg, model, info)
    if not info.is_main:
        return None
    return evaluate_features(cfg, features)


def evaluate_features(cfg: dict, features: dict[str, Any]) -> dict[str, Any]:
    """The protocol ``evaluator_cfg.eval_func`` names, on features of :func:`extract_embeddings`.

    Returns the protocol's dict plus ``"summary"`` (one headline number per probe set).
    """
    engine, data = cfg["evaluator_cfg"], cfg["data_cfg"]
    dataset_name = data.get("test_dataset_name", data["dataset_name"])
    extra: dict[str, Any] = {}
    eval_func = engine.get("eval_func", "identification")
    if eval_func in ("evaluate_Gait3D", "evaluation_Gait3D"):
        partition = json.loads(resolve_data_path(data["dataset_partition"]).read_text())
        extra["probe_set"] = set(partition["PROBE_SET"])
    else:
        extra["cross_view_gallery"] = engine.get("cross_view_gallery", False)
        extra["remove_no_gallery"] = data.get("remove_no_gallery", False)
    result = evaluate(
        eval_func, dataset_name, features["embeddings"], features["labels"], features["types"], features["views"],
        metric=engine.get("metric", "euc"), **extra,
    )
    if "NM" in result and "per_view" in result["NM"]:
        log.info("rank-1 accuracy (%%), identical views excluded:\n%s", format_casia_b_table(result))
    else:
        log.info("test results: %s", {k: v for k, v in result.items() if not isinstance(v, (dict, list))})
    result["summary"] = {k: v["mean"] for k, v in result.items() if isinstance(v, dict) and "mean" in v}
    result["summary"] |= {k: result[k] for k in GAIT3D_SUMMARY if k in result}
    return result
