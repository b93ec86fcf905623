"""Training losses of HSTL: batch-all triplet loss and part-wise cross-entropy.

Both losses work on part features as the model returns them (``[n, parts, c]``),
compute one loss per part and return the mean over parts, as OpenGait does
(``lib/modeling/losses/`` of OpenGait and both HSTL repositories). ``LossAggregator`` builds them from OpenGait's
``loss_cfg`` list and sums ``loss_term_weight * loss``.

Every loss returns ``(loss, info)``: ``loss`` a scalar tensor to back-propagate,
``info`` a dict of detached tensors for logging (per-part vectors ``[p]`` or
scalars). The aggregator turns ``info`` into flat python floats.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["CrossEntropyLoss", "LossAggregator", "TripletLoss", "gather_with_grad", "world_size"]


def world_size() -> int:
    """Number of processes in the default group, 1 when not running distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """All-gather ``t`` along dim 0 from every rank, keeping the local slice's gradient.

    Spec E.1: the other ranks' slices are constants (no gradient flows back to them),
    this rank's slice is ``t`` itself. Every rank must pass a tensor of the same
    shape (the training sampler yields equal batches). Without an initialised
    process group, or with one process, ``t`` is returned unchanged.
    """
    size = world_size()
    if size == 1:
        return t
    parts = [torch.empty_like(t) for _ in range(size)]
    dist.all_gather(parts, t.detach().contiguous())
    parts[dist.get_rank()] = t
    return torch.cat(parts, dim=0)


def _part_distances(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distance matrices per part: ``[p, n, c]`` -> ``[p, n, n]``.

    ``sqrt(relu(|x|^2 + |y|^2 - 2 x.y))`` as OpenGait computes it (``TripletLoss.ComputeDistance``).
    """
    sq = x.pow(2).sum(-1)
    inner = x @ x.transpose(1, 2)
    return F.relu(sq.unsqueeze(2) + sq.unsqueeze(1) - 2 * inner).sqrt()


def _padded_indices(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of a boolean ``[n, n]`` mask, the column indices where it is true.

    Returns ``(index [n, k], valid [n, k])`` with ``k`` the largest row count; rows
    with fewer true entries are padded (``valid`` false there). With a balanced
    P x K batch nothing is padded.
    """
    counts = mask.sum(1)
    width = max(int(counts.max()), 1)
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :width]
    valid = torch.arange(width, device=mask.device).unsqueeze(0) < counts.unsqueeze(1)
    return order, valid


class TripletLoss(nn.Module):
    """Batch-all triplet loss with a non-zero mean per part (OpenGait's ``TripletLoss``).

    For every part, every anchor ``a``, every positive ``pos`` with the anchor's
    label (``pos = a`` included) and every negative ``neg`` with another label the
    term is ``relu(d(a, pos) - d(a, neg) + margin)``. A part's loss is the sum of
    its terms divided by the number of non-zero terms (+1e-9), 0 if none is
    non-zero; the returned loss is the mean over parts.

    Under ``torch.distributed`` with more than one process, embeddings and labels
    are gathered from every rank first and the loss is multiplied by the world
    size, cancelling DDP's gradient averaging as OpenGait does.
    """

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = float(margin)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``embeddings [n, p, c]``, integer ``labels [n]`` -> ``(loss [], info)``.

        ``info`` holds detached per-part vectors ``[p]``: ``loss``, ``hard_loss``
        (largest term), ``loss_num`` (non-zero terms), ``nonzero_frac`` (non-zero
        terms / all triplets) and ``mean_dist`` (mean of the distance matrix).
        """
        if embeddings.dim() != 3 or labels.shape != embeddings.shape[:1]:
            raise ValueError(
                f"TripletLoss expects embeddings [n, p, c] and labels [n], got "
                f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
            )
        size = world_size()
        embeddings = gather_with_grad(embeddings)
        labels = gather_with_grad(labels)

        x = embeddings.float().permute(1, 0, 2)
        distance = _part_distances(x)

        same = labels.unsqueeze(1) == labels.unsqueeze(0)
        pos_idx, pos_valid = _padded_indices(same)
        neg_idx, neg_valid = _padded_indices(~same)
        p = distance.shape[0]
        d_ap = distance.gather(2, pos_idx.expand(p, -1, -1))
        d_an = distance.gather(2, neg_idx.expand(p, -1, -1))
        valid = pos_valid.unsqueeze(2) & neg_valid.unsqueeze(1)
        terms = F.relu(d_ap.unsqueeze(3) - d_an.unsqueeze(2) + self.margin)
        terms = torch.where(valid, terms, torch.zeros((), dtype=terms.dtype, device=terms.device))
        terms = terms.flatten(1)

        loss_num = (terms != 0).sum(1).float()
        per_part = terms.sum(1) / (loss_num + 1e-9)
        per_part = torch.where(loss_num == 0, torch.zeros_like(per_part), per_part)
        loss = per_part.mean() * size

        num_triplets = valid.sum().clamp(min=1).float()
        info = {
            "loss": per_part.detach(),
            "hard_loss": terms.max(1).values.detach(),
            "loss_num": loss_num.detach(),
            "nonzero_frac": (loss_num / num_triplets).detach(),
            "mean_dist": distance.mean((1, 2)).detach(),
        }
        return loss, info


class CrossEntropyLoss(nn.Module):
    """Part-wise cross-entropy on ``scale * logits``, optionally label-smoothed (OpenGait's ``CrossEntropyLoss``).

    Per part: ``CE_part`` = mean over samples of ``-log q(label)``, with ``q`` the
    softmax of ``scale * logits``. With ``label_smooth`` the part loss is
    ``(1 - eps) * CE_part + eps * S``, ``S`` one scalar: the mean of ``-log q`` over
    all parts, samples and classes. The returned loss is the mean over parts.
    Computed in the logits' dtype and on the local batch only (not gathered).
    """

    def __init__(self, scale: float = 16.0, label_smooth: bool = True, eps: float = 0.1, log_accuracy: bool = False) -> None:
        super().__init__()
        self.scale = float(scale)
        self.label_smooth = bool(label_smooth)
        self.eps = float(eps)
        self.log_accuracy = bool(log_accuracy)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``logits [n, p, C]``, integer ``labels [n]`` in ``[0, C)`` -> ``(loss [], info)``.

        ``info``: ``loss`` (detached ``[p]``) and, with ``log_accuracy``, ``accuracy``
        (scalar: argmax of the unscaled logits vs label, mean over parts and samples).
        """
        if logits.dim() != 3 or labels.shape != logits.shape[:1]:
            raise ValueError(
                f"CrossEntropyLoss expects logits [n, p, C] and labels [n], got "
                f"{tuple(logits.shape)} and {tuple(labels.shape)}"
            )
        n, p, _ = logits.shape
        log_q = F.log_softmax(logits * self.scale, dim=-1)
        target = labels.long().view(n, 1, 1).expand(n, p, 1)
        per_part = -log_q.gather(2, target).squeeze(2).mean(0)
        if self.label_smooth:
            per_part = (1.0 - self.eps) * per_part + self.eps * (-log_q.mean())
        info = {"loss": per_part.detach()}
        if self.log_accuracy:
            hits = logits.argmax(-1) == labels.view(n, 1)
            info["accuracy"] = hits.float().mean().detach()
        return per_part.mean(), info


_LOSS_TYPES: dict[str, tuple[type[nn.Module], str, str, tuple[str, ...]]] = {
    # type: (class, model output it reads, default log_prefix, accepted constructor keys)
    "TripletLoss": (TripletLoss, "embeddings", "triplet", ("margin",)),
    "CrossEntropyLoss": (CrossEntropyLoss, "logits", "softmax", ("scale", "label_smooth", "eps", "log_accuracy")),
}
_COMMON_KEYS = ("type", "loss_term_weight", "log_prefix")


class LossAggregator(nn.Module):
    """The losses of OpenGait's ``loss_cfg``, weighted and summed (OpenGait's ``LossAggregator``).

    ``loss_cfg`` is a list of entries (a single dict is accepted too) such as
    ``{"type": "TripletLoss", "loss_term_weight": 1.0, "margin": 0.2, "log_prefix": "triplet"}``.
    ``TripletLoss`` reads the model output ``"embeddings"``, ``CrossEntropyLoss``
    reads ``"logits"``. An unknown type or key raises ``ValueError`` naming it.
    """

    def __init__(self, loss_cfg: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> None:
        super().__init__()
        entries = [loss_cfg] if isinstance(loss_cfg, Mapping) else list(loss_cfg)
        if not entries:
            raise ValueError("loss_cfg is empty: give at least one loss entry")
        self.losses = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        self.inputs: dict[str, str] = {}
        for entry in entries:
            loss_type = entry.get("type")
            if loss_type not in _LOSS_TYPES:
                raise ValueError(f"unknown loss type {loss_type!r} in loss_cfg; valid types: {sorted(_LOSS_TYPES)}")
            cls, input_key, default_prefix, accepted = _LOSS_TYPES[loss_type]
            unknown = sorted(set(entry) - set(_COMMON_KEYS) - set(accepted))
            if unknown:
                raise ValueError(
                    f"unknown key(s) {unknown} in the {loss_type} entry of loss_cfg; "
                    f"valid keys: {sorted(_COMMON_KEYS + accepted)}"
                )
            prefix = entry.get("log_prefix", default_prefix)
            if prefix in self.losses:
                raise ValueError(f"two loss_cfg entries share log_prefix {prefix!r}")
            self.losses[prefix] = cls(**{k: entry[k] for k in accepted if k in entry})
            self.weights[prefix] = float(entry.get("loss_term_weight", 1.0))
            self.inputs[prefix] = input_key

    def forward(self, model_outputs: Mapping[str, torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """``model_outputs`` with ``"embeddings" [n, p, c]`` and/or ``"logits" [n, p, C]``.

        Returns ``(total, info)``: ``total`` = sum of ``loss_term_weight * loss``;
        ``info`` maps ``scalar/<log_prefix>/<name>`` to python floats (per-part
        values averaged over parts) plus ``scalar/total_loss``.
        """
        total: torch.Tensor | None = None
        info: dict[str, float] = {}
        for prefix, loss_fn in self.losses.items():
            key = self.inputs[prefix]
            if key not in model_outputs:
                raise KeyError(
                    f"loss {prefix!r} needs model output {key!r}; got keys {sorted(model_outputs)}"
                )
            loss, loss_info = loss_fn(model_outputs[key], labels)
            weighted = self.weights[prefix] * loss
            total = weighted if total is None else total + weighted
            for name, value in loss_info.items():
                info[f"scalar/{prefix}/{name}"] = float(value.float().mean())
        info["scalar/total_loss"] = float(total.detach())
        return total, info
