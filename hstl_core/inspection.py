"""Looking inside an HSTL model: what training changed, and which parts carry identity.

The functions take a model (``HSTL``, ``HSTL_OU`` or ``HSTL_Gait3D``), its recorded
intermediates (``model(sils, return_intermediates=True)["intermediates"]``, see
``hstl_core.model.intermediates``) or its test-set embeddings ``[N, parts, c]``.

* ``before_after`` - a freshly initialised model and the same architecture loaded
  from a checkpoint, for side-by-side pictures.
* ``part_groups`` - which of the ``parts`` each pooling module (ASTP per level, HPP)
  produces; ``gem_exponents`` - the learned GeM exponent p of each of them.
* ``fta_branch_weights`` - FTA's softmax weight of the 3-frame branch per region,
  channel and output frame; ``activation_energy`` - a feature map's mean |activation|.
* ``part_rank1`` / ``group_rank1`` - the CASIA-B protocol (``evaluation.evaluate_casia_b``)
  on one part, on one level's parts, or on all parts but one level's.
* ``distance_separation`` - how well mean part distances separate subjects, free of units.
* ``architecture`` - the model's stages in forward order with their shapes and
  regions, for ``viz.plot_architecture``.

Import direction: above ``model`` and ``evaluation``, below ``engine``; a notebook gets the
trained checkpoint from ``hstl_core.engine.ensure_trained`` and passes its path here.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hstl_core import evaluation
from hstl_core.model import ASTP, FTABlock, GeMHPP, build_model, load_checkpoint

CONDITIONS = tuple(evaluation.CASIA_B_PROBES)
"""The CASIA-B probe sets, ``("NM", "BG", "CL")``."""


def before_after(model_cfg: dict, checkpoint: str | os.PathLike, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """``(untrained, trained)``: ``build_model(model_cfg)`` with ``torch.manual_seed(seed)``
    weights, and the same architecture loaded strictly from ``checkpoint``; both in eval mode."""
    torch.manual_seed(seed)
    untrained = build_model(model_cfg).eval()
    trained = build_model(model_cfg)
    load_checkpoint(trained, checkpoint, strict=True)
    return untrained, trained.eval()


def part_groups(model: nn.Module) -> dict[str, range]:
    """Part indices of the ``[n, parts, c]`` output that each pooling module gives, in order.

    ``{"astp1": range(0, 1), "astp2": range(1, 3), "astp2_fta": range(3, 5),
    "astp3": range(5, 9), "HPP": range(9, 73)}`` for the paper's CASIA-B model
    (OU-MVLP / Gait3D add ``astp4``). Raises ValueError for a model without them.
    """
    stages = getattr(model, "stages", None)
    if stages is None or not hasattr(model, "HPP"):
        raise ValueError(f"part_groups needs an HSTL model (stages, astp*, HPP), got {type(model).__name__}")
    names = ["astp1", "astp2", "astp2_fta", *[stage.replace("arme", "astp") for stage in stages], "HPP"]
    groups: dict[str, range] = {}
    start = 0
    for name in names:
        module = getattr(model, name)
        count = len(module.splits) if isinstance(module, ASTP) else sum(module.bin_num)
        groups[name] = range(start, start + count)
        start += count
    if start != model.parts:
        raise ValueError(f"part groups cover {start} parts, the model has {model.parts}")
    return groups


def gem_exponents(model: nn.Module) -> dict[str, np.ndarray]:
    """The GeM exponent p of every pooling module, in the order of ``part_groups``.

    ASTP has one GeM (one p) per region, so ``astp3`` gives 4 values; HPP has one p
    shared by all its rows, so ``HPP`` gives 1 value. Every p starts at 6.5.
    """
    exponents: dict[str, np.ndarray] = {}
    for name in part_groups(model):
        module = getattr(model, name)
        gems = list(module.hpp) if isinstance(module, ASTP) else [module]
        exponents[name] = np.array([float(gem.p.detach()) for gem in gems if isinstance(gem, GeMHPP)])
    return exponents


def fta_branch_weights(intermediates: Mapping[str, torch.Tensor]) -> np.ndarray:
    """a_3, FTA's softmax weight of the 3-frame branch FP_3, as ``[regions, n, c, T']``.

    ``intermediates`` recorded from a forward of an HSTL model; the weight of the
    5-frame branch is ``1 - a_3``. Raises KeyError when no FTA weights were recorded.
    """
    keys = sorted(k for k in intermediates if k.startswith("fta.region") and k.endswith(".weights"))
    if not keys:
        raise KeyError("no 'fta.region{i}.weights' in the intermediates; record a forward of an HSTL model")
    keys.sort(key=lambda key: int(key.split(".")[1].removeprefix("region")))
    return np.stack([intermediates[key][0, :, :, :, 0, 0].float().cpu().numpy() for key in keys])


def activation_energy(maps: torch.Tensor, step: int) -> np.ndarray:
    """Mean absolute activation over channels of ``maps [n, c, T, h, w]`` at frame ``step``: ``[n, h, w]``."""
    if maps.dim() != 5:
        raise ValueError(f"activation_energy expects [n, c, T, h, w], got {list(maps.shape)}")
    return maps[:, :, step].abs().mean(dim=1).float().cpu().numpy()


def _evaluate(embeddings: np.ndarray, labels, types, views, metric: str) -> dict[str, float]:
    result = evaluation.evaluate_casia_b(embeddings, labels, types, views, metric=metric)
    return {condition: result[condition]["mean"] for condition in CONDITIONS}


def part_rank1(embeddings: np.ndarray, labels: Sequence[str], types: Sequence[str], views: Sequence[str],
               metric: str = "euc") -> dict[str, np.ndarray]:
    """CASIA-B rank-1 (identical view excluded) of every part alone: ``{"NM": [parts], "BG": ..., "CL": ...}``.

    ``embeddings [N, parts, c]`` with the N labels, types and views of
    ``evaluation.evaluate_casia_b``.
    """
    embeddings = np.asarray(embeddings)
    rows = [_evaluate(embeddings[:, [p]], labels, types, views, metric) for p in range(embeddings.shape[1])]
    return {condition: np.array([row[condition] for row in rows]) for condition in CONDITIONS}


def group_rank1(embeddings: np.ndarray, labels: Sequence[str], types: Sequence[str], views: Sequence[str],
                groups: Mapping[str, Sequence[int]], keep: bool = True, metric: str = "euc") -> dict[str, dict[str, float]]:
    """CASIA-B rank-1 per group of parts: ``{group: {"NM": .., "BG": .., "CL": ..}}``.

    ``keep=True`` evaluates only the group's parts; ``keep=False`` all parts except
    the group's (a part-dropping study: how much is lost without them).
    """
    embeddings = np.asarray(embeddings)
    every = np.arange(embeddings.shape[1])
    result: dict[str, dict[str, float]] = {}
    for name, indices in groups.items():
        chosen = np.isin(every, list(indices))
        if not keep:
            chosen = ~chosen
        if not chosen.any():
            raise ValueError(f"group {name!r} leaves no part to evaluate")
        result[name] = _evaluate(embeddings[:, chosen], labels, types, views, metric)
    return result


def distance_separation(distances: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """How well a distance matrix ``[n, n]`` separates subjects, independent of its units.

    Returns the mean same-subject and different-subject distance (off the
    diagonal), their ratio, and ``auc``: the share of (same-subject pair,
    different-subject pair) combinations in which the same-subject pair is closer
    (ties count one half). 0.5 is chance, 1.0 perfect separation.
    """
    distances = np.asarray(distances, dtype=np.float64)
    labels = np.asarray(labels)
    if distances.shape != (len(labels), len(labels)):
        raise ValueError(f"distances {distances.shape} do not match {len(labels)} labels")
    upper = np.triu(np.ones_like(distances, dtype=bool), k=1)
    same_mask = (labels[:, None] == labels[None, :]) & upper
    diff_mask = (labels[:, None] != labels[None, :]) & upper
    same, diff = distances[same_mask], distances[diff_mask]
    if same.size == 0 or diff.size == 0:
        raise ValueError("distance_separation needs at least two sequences of one subject and two subjects")
    ranks = np.searchsorted(np.sort(diff), same, side="left"), np.searchsorted(np.sort(diff), same, side="right")
    closer = (diff.size - ranks[1]) + 0.5 * (ranks[1] - ranks[0])
    return {
        "same": float(same.mean()),
        "different": float(diff.mean()),
        "ratio": float(same.mean() / diff.mean()),
        "auc": float(closer.sum() / (same.size * diff.size)),
    }


@dataclass(frozen=True)
class Stage:
    """One module of the forward: name, kind, output shape and the regions it works on."""

    name: str
    kind: str
    shape: tuple[int, ...]
    regions: tuple[int, ...] = ()


_KINDS = {"ARMEConv": "ARME", "ASTP": "ASTP", "FTABlock": "FTA", "TemporalMax": "TP", "GeMHPP": "HPP",
          "SeparateFCs": "separate FCs", "BatchNorm1d": "BNNeck", "MaxPool3d": "max pool"}


def _regions(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(module, (ASTP, FTABlock)):
        return tuple(module.splits)
    if isinstance(module, GeMHPP):
        return tuple([shape[2] // module.bin_num[0]] * module.bin_num[0]) if len(module.bin_num) == 1 else ()
    first = next(iter(module.children()), None)
    if first is not None and hasattr(first, "splits"):
        return tuple(first.splits)
    if len(shape) == 5:
        return (shape[3],)
    return ()


def architecture(model: nn.Module, intermediates: Mapping[str, torch.Tensor]) -> list[Stage]:
    """The model's top-level modules in forward order, each with its recorded output shape.

    ``kind`` is ARME, ASTP, FTA, TP, HPP, separate FCs, BNNeck or max pool; ``regions``
    the row heights a module treats separately (ARME, FTA, ASTP regions; HPP's rows).
    Modules that the forward did not record are left out; ``intermediates`` must come
    from the same model.
    """
    stages = []
    for name, module in model.named_children():
        if name not in intermediates:
            continue
        leaf = next(iter(module.children()), module) if name.startswith("arme") else module
        shape = tuple(intermediates[name].shape)
        kind = "ARME" if name.startswith("arme") and type(leaf).__name__ == "ARMEConv" else _KINDS.get(type(leaf).__name__, "3D conv")
        stages.append(Stage(name, kind, shape, _regions(module, shape)))
    if not stages:
        raise ValueError("no recorded intermediate matches a module of the model")
    return stages
