"""The fast path that build_model returns against the plain (original) path, and GeM's range."""
from __future__ import annotations

import copy

import pytest
import torch

from hstl_core.model import GeMHPP, build_model
from hstl_core.model.hstl import FTA, set_fast_path, temporal_pools_by_slices
from small_models import SMALL_CB, SMALL_OU, randomised


def fast_and_plain(cfg: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The model build_model returns (randomised, in training mode) and a plain copy with the same weights."""
    fast = randomised(cfg).train()
    return fast, set_fast_path(copy.deepcopy(fast), False)


def assert_relative_close(actual: torch.Tensor, expected: torch.Tensor, tolerance: float = 1e-4, what: str = "") -> None:
    error = float((actual - expected).abs().max() / expected.abs().max())
    assert error <= tolerance, f"{what}: relative difference {error:.2e} > {tolerance}"


@pytest.mark.parametrize("frames", [1, 2, 30, 47])
def test_fast_eval_outputs_equal_the_plain_path(frames):
    fast, plain = fast_and_plain(SMALL_CB)
    sils = torch.rand(2, frames, 32, 22)
    with torch.no_grad():
        got, expected = fast.eval()(sils), plain.eval()(sils)
    for key in ("embeddings", "features", "logits"):
        assert_relative_close(got[key], expected[key], what=key)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this PyTorch has no oneDNN")
@pytest.mark.parametrize("frames", [1, 30, 47])
def test_fast_eval_of_one_sequence_equals_the_plain_path_and_never_uses_the_im2col_conv(frames):
    fast, plain = fast_and_plain(SMALL_CB)
    sils = torch.rand(1, frames, 32, 22)
    kernels, outputs = {}, {}
    for name, model in (("fast", fast.eval()), ("plain", plain.eval())):
        with torch.no_grad(), torch.profiler.profile() as profile:
            outputs[name] = model(sils)
        kernels[name] = {event.key for event in profile.key_averages()}
    assert "aten::slow_conv3d_forward" in kernels["plain"], "a batch of one thin input takes the im2col kernel"
    assert "aten::slow_conv3d_forward" not in kernels["fast"]
    for key in ("embeddings", "features", "logits"):
        assert_relative_close(outputs["fast"][key], outputs["plain"][key], what=key)


@pytest.mark.parametrize("frames", range(3, 24))
def test_temporal_pools_by_slices_equal_ftas_max_pools(frames):
    fta = FTA(channels=2)
    x = torch.randn(2, 2, frames, 3, 4)
    x[1, :, frames // 2 :] = float("-inf")
    x[0, 0, 0] = 0.0
    pools = temporal_pools_by_slices(x)
    assert torch.equal(pools[0], fta.FP_3(x)) and torch.equal(pools[1], fta.FP_5(x))


def test_fast_four_level_variant_and_packed_input_equal_the_plain_path():
    fast, plain = fast_and_plain(SMALL_OU)
    lengths = torch.tensor([1, 2, 7, 11])
    sils = torch.rand(1, int(lengths.sum()), 32, 22)
    with torch.no_grad():
        got, expected = fast.eval()(sils, seqL=lengths), plain.eval()(sils, seqL=lengths)
    for key in ("embeddings", "logits"):
        assert_relative_close(got[key], expected[key], what=key)


def test_fast_training_gradients_equal_the_plain_path():
    fast, plain = fast_and_plain(SMALL_CB)
    sils = torch.rand(4, 9, 32, 22)
    for model in (fast, plain):
        out = model.train()(sils)
        (out["embeddings"].pow(2).mean() + out["logits"].logsumexp(-1).mean()).backward()
    for (name, got), (_, expected) in zip(fast.named_parameters(), plain.named_parameters()):
        assert_relative_close(got.grad, expected.grad, 1e-3, name)


def test_fast_path_keeps_state_dict_and_parameters():
    fast, plain = fast_and_plain(SMALL_CB)
    assert [(k, v.shape) for k, v in fast.state_dict().items()] == [(k, v.shape) for k, v in plain.state_dict().items()]
    assert all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(), plain.state_dict().values()))
    conv = fast.arme2[0].conv3d[0].conv3d.weight
    assert conv.is_contiguous(memory_format=torch.channels_last_3d)
    params = list(fast.parameters())
    set_fast_path(fast, False)
    assert conv.is_contiguous() and all(a is b for a, b in zip(params, fast.parameters()))


def test_fast_path_weight_layout_follows_the_mode_on_a_cpu():
    fast, plain = fast_and_plain(SMALL_CB)
    conv, params = fast.arme3[1].conv3d[3].conv3d.weight, list(fast.parameters())
    fast.eval()
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last_3d)
    fast.train()
    assert conv.is_contiguous(memory_format=torch.channels_last_3d)
    assert all(a is b for a, b in zip(params, fast.parameters())), "an optimizer built before keeps its parameters"
    plain.train()
    assert plain.arme3[1].conv3d[3].conv3d.weight.is_contiguous(), "the plain path stays in the original layout"
    sils = torch.rand(2, 9, 32, 22)
    with torch.no_grad():
        assert_relative_close(fast.eval()(sils)["embeddings"], plain.eval()(sils)["embeddings"])


@pytest.mark.parametrize("switches", [{}, {"p3d_arme": True, "downsample": True, "part_confidence": True}])
def test_hstlpp_is_built_on_the_fast_path_and_equals_its_plain_path(switches):
    torch.manual_seed(0)
    fast = build_model({**SMALL_CB, "model": "HSTLPP", **switches})
    plain = set_fast_path(copy.deepcopy(fast), False)
    assert fast.arme1[0].conv3d.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert fast.fta.fast and not plain.fta.fast
    sils = torch.rand(1, 31, 32, 22)
    with torch.no_grad():
        got, expected = fast.eval()(sils), plain.eval()(sils)
    assert_relative_close(got["embeddings"], expected["embeddings"], what="embeddings")
    for model in (fast, plain):
        out = model.train()(torch.rand(4, 9, 32, 22, generator=torch.Generator().manual_seed(1)))
        (out["embeddings"].pow(2).mean() + out["logits"].logsumexp(-1).mean()).backward()
    for (name, got_param), (_, expected_param) in zip(fast.named_parameters(), plain.named_parameters()):
        assert_relative_close(got_param.grad, expected_param.grad, 1e-3, name)


@pytest.mark.parametrize("flush_subnormals", [False, True])
@pytest.mark.parametrize("p", [6.5, 8.0, 12.0])
def test_gem_of_an_empty_bin_has_finite_value_and_gradients(p, flush_subnormals):
    gem = GeMHPP(bin_num=(2,), p=p)
    x = torch.zeros(1, 3, 2, 11)
    x[:, :, 0] = torch.rand(3, 11)
    x.requires_grad_(True)
    assert torch.set_flush_denormal(flush_subnormals), "this CPU cannot flush subnormals"
    try:
        out = gem(x)
        out.sum().backward()
    finally:
        torch.set_flush_denormal(False)
    torch.testing.assert_close(out[0, :, 1], torch.full((3,), gem.eps), rtol=1e-4, atol=0.0)
    assert torch.isfinite(gem.p.grad).all() and torch.isfinite(x.grad).all()
    direct = x[:, :, 0].detach().pow(p).mean(-1).pow(1.0 / p)
    assert_relative_close(out[0, :, 0].detach(), direct[0], 1e-5)
