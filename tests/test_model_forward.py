"""HSTL forward: official numerics, output contract, short sequences, packed seqL, ARME regions."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hstl_core.model import ARMEConv, build_model
from small_models import SMALL_CB, SMALL_OU, randomised


def official_cb_forward(state: dict, sils: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """HSTL-CB's eval forward written out from spec D.3 with functional ops: (bnft [n, p, c], logits)."""
    x = sils.unsqueeze(1)
    if x.shape[2] < 3:
        x = x.repeat(1, 1, 3 if x.shape[2] == 1 else 2, 1, 1)

    def arme(x, name, layer, splits):
        regions = x.split(splits, 3)
        convs = [F.conv3d(r, state[f"{name}.{layer}.conv3d.{i}.conv3d.weight"], padding=1) for i, r in enumerate(regions)]
        return F.leaky_relu(torch.cat(convs, 3))

    def gem(x, p):
        return F.avg_pool2d(x.clamp(min=1e-6).pow(p), (1, x.size(-1))).pow(1.0 / p).squeeze(-1)

    def astp(x, name, splits, proj):
        x = torch.max(x, dim=2)[0]
        if proj:
            x = F.conv2d(x, state[f"{name}.proj.conv.weight"])
        n, c = x.shape[:2]
        return torch.cat([gem(r.reshape(n, c, 1, -1), state[f"{name}.hpp.{i}.p"]) for i, r in enumerate(x.split(splits, 2))], -1)

    def fta(x, splits):
        outs = []
        for i, r in enumerate(x.split(splits, 3)):
            b3 = F.max_pool3d(r, (3, 1, 1), (3, 1, 1))
            b5 = F.max_pool3d(r, (5, 1, 1), (3, 1, 1), (1, 0, 0))
            pooled = (b3 + b5).mean(dim=(3, 4))
            logits = [F.conv1d(pooled, state[f"fta.mma.{i}.fcs.{k}.weight"], state[f"fta.mma.{i}.fcs.{k}.bias"]) for k in range(2)]
            w = torch.softmax(torch.stack(logits, 0), dim=0)[..., None, None]
            outs.append(w[0] * b3 + w[1] * b5)
        return torch.cat(outs, 3)

    h = x.shape[3]
    two, four = [h * 40 // 64, h * 24 // 64], [h * 8 // 64, h * 32 // 64, h * 16 // 64, h * 8 // 64]
    x = F.leaky_relu(F.conv3d(x, state["arme1.0.conv3d.weight"], padding=1))
    p1 = astp(x, "astp1", [h], True)
    x = arme(arme(x, "arme2", 0, two), "arme2", 1, two)
    p2 = astp(x, "astp2", two, True)
    x = fta(x, two)
    p3 = astp(x, "astp2_fta", two, True)
    x = arme(arme(x, "arme3", 0, four), "arme3", 1, four)
    p4 = astp(x, "astp3", four, False)
    top = torch.max(x, dim=2)[0]
    n, c = top.shape[:2]
    p5 = gem(top.reshape(n, c, h, -1), state["HPP.p"])
    feat = torch.cat([p1, p2, p3, p4, p5], -1).permute(2, 0, 1)
    gait = feat.matmul(state["Head0.fc_bin"]).permute(1, 2, 0)
    bnft = F.batch_norm(gait, state["Bn.running_mean"], state["Bn.running_var"], state["Bn.weight"], state["Bn.bias"])
    logits = bnft.permute(2, 0, 1).matmul(state["Head1.fc_bin"]).permute(1, 0, 2)
    return bnft.permute(0, 2, 1), logits


@pytest.mark.parametrize("frames", [1, 2, 7])
def test_eval_embeddings_equal_the_official_computation(frames):
    cfg = {"model": "HSTL", "channels": [8, 16, 32], "class_num": 16}
    model = randomised(cfg)
    sils = torch.rand(2, frames, 64, 44)
    with torch.no_grad():
        out = model(sils)
        bnft, logits = official_cb_forward(model.state_dict(), sils)
    torch.testing.assert_close(out["embeddings"], bnft, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["logits"], logits, rtol=1e-5, atol=1e-6)


def test_output_contract_and_eval_determinism():
    model = randomised(SMALL_CB)
    sils = torch.rand(3, 9, 32, 22)
    with torch.no_grad():
        first, second = model(sils), model(sils)
    assert set(first) == {"embeddings", "logits", "features"}
    assert first["embeddings"].shape == (3, 41, 32)
    assert first["features"].shape == (3, 41, 32)
    assert first["logits"].shape == (3, 41, 16)
    for key in first:
        assert torch.equal(first[key], second[key])


def test_short_sequences_are_repeated_as_in_the_paper():
    model = randomised(SMALL_CB)
    a, b = torch.rand(1, 1, 32, 22), torch.rand(1, 1, 32, 22)
    with torch.no_grad():
        one = model(a)["embeddings"]
        three = model(a.repeat(1, 3, 1, 1))["embeddings"]
        two = model(torch.cat([a, b], 1))["embeddings"]
        four = model(torch.cat([a, b, a, b], 1))["embeddings"]
    torch.testing.assert_close(one, three)
    torch.testing.assert_close(two, four)


@pytest.mark.parametrize("cfg", [SMALL_CB, SMALL_OU], ids=["CASIA-B", "OU-MVLP"])
def test_packed_sequences_equal_running_each_alone(cfg):
    model = randomised(cfg)
    lengths = [1, 2, 3, 5, 6, 13]
    sequences = [torch.rand(1, t, 32, 22) for t in lengths]
    with torch.no_grad():
        alone = {key: torch.cat([model(s)[key] for s in sequences]) for key in ("embeddings", "logits", "features")}
        packed = model(torch.cat(sequences, 1), seqL=torch.tensor(lengths))
    for key, value in alone.items():
        assert packed[key].shape[0] == len(lengths)
        torch.testing.assert_close(packed[key], value, rtol=1e-5, atol=1e-6)


def test_packed_training_step_has_finite_gradients():
    model = build_model(SMALL_CB).train()
    lengths = torch.tensor([4, 9, 2])
    out = model(torch.rand(1, int(lengths.sum()), 32, 22), seqL=lengths)
    (out["embeddings"].pow(2).mean() + out["logits"].mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_bad_inputs_raise_clear_errors():
    model = build_model(SMALL_CB).eval()
    with pytest.raises(ValueError, match="input_height=32"):
        model(torch.rand(1, 5, 64, 44))
    with pytest.raises(ValueError, match="seqL"):
        model(torch.rand(1, 5, 32, 22), seqL=torch.tensor([2, 2]))


def test_arme_regions_do_not_exchange_information():
    torch.manual_seed(0)
    layer = ARMEConv(2, 3, [5, 3])
    x = torch.rand(1, 2, 4, 8, 6)
    changed = x.clone()
    changed[:, :, :, 5:] = torch.rand(1, 2, 4, 3, 6)
    with torch.no_grad():
        before, after = layer(x), layer(changed)
    assert torch.equal(before[:, :, :, :5], after[:, :, :, :5])
    assert not torch.equal(before[:, :, :, 5:], after[:, :, :, 5:])


def test_intermediates_are_recorded_without_changing_outputs():
    model = randomised(SMALL_CB)
    sils = torch.rand(2, 9, 32, 22)
    with torch.no_grad():
        plain = model(sils)
        inspected = model(sils, return_intermediates=True)
    steps = inspected["intermediates"]
    expected = ["arme1", "astp1", "arme2.0", "arme2.1", "arme2", "astp2", "fta.region0.branch3", "fta.region0.branch5",
                "fta.region0.weights", "fta.region1.branch3", "fta.region1.branch5", "fta.region1.weights", "fta",
                "astp2_fta", "arme3.0", "arme3.1", "arme3", "astp3", "TP", "HPP", "parts", "Head0", "Bn", "Head1"]
    assert list(steps) == expected
    assert steps["fta"].shape == (2, 16, 3, 32, 22)
    torch.testing.assert_close(steps["fta.region0.weights"].sum(0), torch.ones(2, 16, 3, 1, 1))
    assert steps["parts"].shape == (2, 32, 41)
    torch.testing.assert_close(inspected["embeddings"], plain["embeddings"])
    assert not model._forward_hooks and not model.arme2._forward_hooks
