"""Losses on hand-made cases whose values are worked out in the comments (spec E)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hstl_core.losses import CrossEntropyLoss, LossAggregator, TripletLoss, gather_with_grad


def points(*xy: tuple[float, float]) -> torch.Tensor:
    """One part per sample: ``[n, 1, 2]``."""
    return torch.tensor(xy, dtype=torch.float32).unsqueeze(1)


# Part 0: a=(0,0) and b=(1,0) share label 0, c=(1.1,0) has label 1.
# d(a,b)=1, d(a,c)=1.1, d(b,c)=0.1, margin 0.2. The six triplets (anchor, pos, neg):
#   (a,a,c) relu(0 - 1.1 + .2) = 0      (a,b,c) relu(1 - 1.1 + .2) = 0.1
#   (b,b,c) relu(0 - 0.1 + .2) = 0.1    (b,a,c) relu(1 - 0.1 + .2) = 1.1
#   (c,c,a) relu(0 - 1.1 + .2) = 0      (c,c,b) relu(0 - 0.1 + .2) = 0.1
# Non-zero: 0.1, 0.1, 1.1, 0.1 -> 1.4 / 4 = 0.35. Without the anchor = positive
# triplets it would be (0.1 + 1.1) / 2 = 0.6.
PART0 = [(0.0, 0.0), (1.0, 0.0), (1.1, 0.0)]
# Part 1: a=(0,0), b=(0,1), c=(0,5): every term is negative before the relu.
PART1 = [(0.0, 0.0), (0.0, 1.0), (0.0, 5.0)]
LABELS = torch.tensor([0, 0, 1])


def test_triplet_hand_case_includes_anchor_as_positive():
    loss, info = TripletLoss(margin=0.2)(points(*PART0), LABELS)
    assert loss.item() == pytest.approx(0.35, abs=1e-4)
    assert info["loss_num"].tolist() == [4.0]
    assert info["hard_loss"].item() == pytest.approx(1.1, abs=1e-4)
    assert info["nonzero_frac"].item() == pytest.approx(4 / 6)
    assert info["mean_dist"].item() == pytest.approx(2 * (1 + 1.1 + 0.1) / 9, abs=1e-4)


def test_triplet_mean_over_parts_with_an_all_zero_part():
    x = torch.cat([points(*PART0), points(*PART1)], dim=1)  # [3, 2, 2]
    loss, info = TripletLoss(margin=0.2)(x, LABELS)
    assert info["loss"].tolist() == pytest.approx([0.35, 0.0], abs=1e-4)
    assert info["loss_num"].tolist() == [4.0, 0.0]
    assert loss.item() == pytest.approx(0.175, abs=1e-4)


def test_triplet_all_zero_and_single_label_give_zero_without_nan():
    loss, info = TripletLoss()(points(*PART1), LABELS)
    assert loss.item() == 0.0 and info["loss_num"].item() == 0.0
    x = torch.randn(4, 3, 5, requires_grad=True)
    loss, info = TripletLoss()(x, torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(x.grad).all() and info["nonzero_frac"].tolist() == [0.0] * 3


def brute_force_triplet(x: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    per_part = []
    for part in range(x.shape[1]):
        d = torch.cdist(x[:, part], x[:, part])
        terms = [
            torch.relu(d[a, pos] - d[a, neg] + margin)
            for a, pos, neg in itertools.product(range(len(labels)), repeat=3)
            if labels[a] == labels[pos] and labels[a] != labels[neg]
        ]
        terms = torch.stack(terms)
        count = (terms > 0).sum()
        per_part.append(terms.sum() / count if count else torch.tensor(0.0))
    return torch.stack(per_part).mean()


def test_triplet_matches_brute_force_on_unbalanced_batch():
    torch.manual_seed(0)
    labels = torch.tensor([3, 1, 3, 2, 2, 2, 1])
    x = torch.randn(7, 3, 4, requires_grad=True)
    loss, _ = TripletLoss(margin=0.5)(x, labels)
    assert loss.item() == pytest.approx(brute_force_triplet(x.detach(), labels, 0.5).item(), abs=1e-5)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_triplet_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[n, p, c\]"):
        TripletLoss()(torch.randn(3, 4), LABELS)


def test_gather_with_grad_is_identity_without_distributed():
    t = torch.randn(3, 2)
    assert gather_with_grad(t) is t


def _distributed_worker(rank: int, init_file: str, results: dict) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        full = torch.randn(4, 2, 3)
        labels = torch.tensor([0, 0, 1, 1])
        local = full[2 * rank:2 * rank + 2].clone().requires_grad_(True)
        loss, _ = TripletLoss()(local, labels[2 * rank:2 * rank + 2])
        loss.backward()
        results[rank] = (loss.item(), local.grad.clone())
    finally:
        dist.destroy_process_group()


def test_triplet_gathers_across_ranks_and_scales_by_world_size(tmp_path):
    torch.manual_seed(0)
    full = torch.randn(4, 2, 3, requires_grad=True)
    reference, _ = TripletLoss()(full, torch.tensor([0, 0, 1, 1]))
    reference.backward()
    results = mp.Manager().dict()
    mp.spawn(_distributed_worker, args=(str(tmp_path / "init"), results), nprocs=2)
    for rank in range(2):
        loss, grad = results[rank]
        assert loss == pytest.approx(2 * reference.item(), abs=1e-5)
        # Averaging the two ranks' gradients (DDP) gives the single-process gradient.
        assert torch.allclose(grad / 2, full.grad[2 * rank:2 * rank + 2], atol=1e-5)


# Cross-entropy, p = 1, C = 2, scale 1: sample 0 logits (0, ln 3) so q = (1/4, 3/4),
# label 1; sample 1 logits (ln 3, 0) so q = (3/4, 1/4), label 0.
# NLL = mean(-ln 3/4, -ln 3/4) = ln(4/3); S = mean of -ln q over all 4 entries
# = (ln 4 + ln(4/3)) / 2.
CE_LOGITS = torch.tensor([[[0.0, math.log(3)]], [[math.log(3), 0.0]]])
CE_LABELS = torch.tensor([1, 0])


def test_cross_entropy_without_smoothing():
    loss, info = CrossEntropyLoss(scale=1, label_smooth=False)(CE_LOGITS, CE_LABELS)
    assert loss.item() == pytest.approx(math.log(4 / 3), abs=1e-6)
    assert "accuracy" not in info


def test_cross_entropy_scale_multiplies_logits():
    loss, _ = CrossEntropyLoss(scale=4, label_smooth=False)(CE_LOGITS / 4, CE_LABELS)
    assert loss.item() == pytest.approx(math.log(4 / 3), abs=1e-6)


def test_cross_entropy_smoothing_uses_global_mean_over_parts_samples_classes():
    # Part 1 has zero logits: q = 1/2 everywhere, NLL = ln 2.
    logits = torch.cat([CE_LOGITS, torch.zeros(2, 1, 2)], dim=1)
    loss, info = CrossEntropyLoss(scale=1, label_smooth=True, eps=0.1)(logits, CE_LABELS)
    s = (2 * math.log(4) + 2 * math.log(4 / 3) + 4 * math.log(2)) / 8
    expected = [0.9 * math.log(4 / 3) + 0.1 * s, 0.9 * math.log(2) + 0.1 * s]
    assert info["loss"].tolist() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(sum(expected) / 2, abs=1e-6)


def test_cross_entropy_accuracy_over_parts_and_samples():
    # Part 0 is right for both samples; part 1 predicts class 1 for both: right for sample 0 only.
    logits = torch.cat([CE_LOGITS, torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]])], dim=1)
    _, info = CrossEntropyLoss(log_accuracy=True)(logits, CE_LABELS)
    assert info["accuracy"].item() == pytest.approx(0.75)


HSTL_LOSS_CFG = [
    {"loss_term_weight": 2.0, "margin": 0.2, "type": "TripletLoss", "log_prefix": "triplet"},
    {"loss_term_weight": 0.5, "scale": 1, "type": "CrossEntropyLoss", "log_prefix": "softmax",
     "log_accuracy": True, "label_smooth": False},
]


def test_aggregator_weights_sum_and_flat_logging():
    outputs = {"embeddings": points(*PART0), "logits": torch.cat([CE_LOGITS, CE_LOGITS[1:]])}
    labels = torch.tensor([1, 1, 0])  # same triplet structure as LABELS; CE labels for the logits
    # CE: samples 0 and 2 have NLL ln(4/3), sample 1 has ln 4.
    ce = (2 * math.log(4 / 3) + math.log(4)) / 3
    total, info = LossAggregator(HSTL_LOSS_CFG)(outputs, labels)
    assert total.item() == pytest.approx(2.0 * 0.35 + 0.5 * ce, abs=1e-4)
    assert info["scalar/total_loss"] == pytest.approx(total.item())
    assert info["scalar/triplet/loss"] == pytest.approx(0.35, abs=1e-4)
    assert info["scalar/softmax/loss"] == pytest.approx(ce, abs=1e-5)
    assert info["scalar/softmax/accuracy"] == pytest.approx(2 / 3)
    assert {"scalar/triplet/hard_loss", "scalar/triplet/loss_num", "scalar/triplet/mean_dist",
            "scalar/triplet/nonzero_frac"} <= set(info)
    assert all(isinstance(v, float) for v in info.values())


def test_aggregator_errors_are_explicit():
    with pytest.raises(ValueError, match="FocalLoss.*TripletLoss"):
        LossAggregator([{"type": "FocalLoss"}])
    with pytest.raises(ValueError, match="margn"):
        LossAggregator([{"type": "TripletLoss", "margn": 0.2}])
    with pytest.raises(KeyError, match="logits"):
        LossAggregator(HSTL_LOSS_CFG)({"embeddings": points(*PART0)}, LABELS)
