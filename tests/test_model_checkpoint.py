"""OpenGait checkpoints: round trip, DDP prefix, bare state dicts, clear errors."""
from __future__ import annotations

import pytest
import torch

from hstl_core.model import CheckpointError, build_model, load_checkpoint, save_checkpoint
from small_models import SMALL_CB


def opengait_dict(model: torch.nn.Module, prefix: str = "") -> dict:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[70000], gamma=0.1)
    state = {prefix + key: value for key, value in model.state_dict().items()}
    return {"model": state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "iteration": 80000}


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("prefix", ["", "module."])
def test_opengait_checkpoint_round_trip(tmp_path, prefix):
    torch.manual_seed(0)
    source, target = build_model(SMALL_CB), build_model(SMALL_CB)
    assert not same_weights(source, target)
    path = tmp_path / "HSTL-80000.pt"
    torch.save(opengait_dict(source, prefix), path)
    assert load_checkpoint(target, path) == 80000
    assert same_weights(source, target)


def test_bare_state_dict_and_our_writer(tmp_path):
    torch.manual_seed(0)
    source, target = build_model(SMALL_CB), build_model(SMALL_CB)
    torch.save(source.state_dict(), tmp_path / "bare.pt")
    assert load_checkpoint(target, tmp_path / "bare.pt") is None
    assert same_weights(source, target)
    written = save_checkpoint(source, tmp_path / "ours" / "HSTL-00010.pt", iteration=10)
    assert load_checkpoint(build_model(SMALL_CB), written) == 10


def test_mismatch_lists_missing_unexpected_and_wrong_shapes_in_one_error(tmp_path):
    model = build_model(SMALL_CB)
    state = model.state_dict()
    del state["HPP.p"]
    state["extra.weight"] = torch.zeros(1)
    state["Head1.fc_bin"] = torch.zeros(41, 32, 74)
    path = tmp_path / "wrong.pt"
    torch.save({"model": state, "iteration": 5}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(model, path)
    text = str(error.value)
    assert str(path) in text
    assert "missing (1): HPP.p" in text
    assert "unexpected (1): extra.weight" in text
    assert "Head1.fc_bin: checkpoint [41, 32, 74] vs model [41, 32, 16]" in text


def test_non_strict_skips_missing_keys_but_not_wrong_shapes(tmp_path):
    model = build_model(SMALL_CB)
    state = model.state_dict()
    del state["HPP.p"]
    torch.save(state, tmp_path / "partial.pt")
    assert load_checkpoint(model, tmp_path / "partial.pt", strict=False) is None
    state["Head1.fc_bin"] = torch.zeros(41, 32, 74)
    torch.save(state, tmp_path / "shaped.pt")
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_checkpoint(model, tmp_path / "shaped.pt", strict=False)


def test_truncated_file_gives_a_clear_error(tmp_path):
    model = build_model(SMALL_CB)
    path = tmp_path / "HSTL-80000.pt"
    torch.save(opengait_dict(model), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*HSTL-80000.pt"):
        load_checkpoint(model, path)
