"""hstl_core.inspection: part groups, GeM exponents, FTA weights, per-part rank-1, distances, stages."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hstl_core import evaluation, inspection
from hstl_core.model import build_model, save_checkpoint

TINY = {"model": "HSTL", "channels": [4, 8, 8], "class_num": 5, "input_height": 32}
TYPES = (*evaluation.CASIA_B_GALLERY, *[t for ts in evaluation.CASIA_B_PROBES.values() for t in ts])


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model(TINY).eval()


@pytest.fixture(scope="module")
def recorded(tiny):
    with torch.no_grad():
        return tiny(torch.rand(2, 12, 32, 22), return_intermediates=True)["intermediates"]


def test_part_groups_cover_the_parts_in_forward_order(tiny):
    groups = inspection.part_groups(tiny)
    assert list(groups) == ["astp1", "astp2", "astp2_fta", "astp3", "HPP"]
    assert [len(r) for r in groups.values()] == [1, 2, 2, 4, 32]
    assert [i for r in groups.values() for i in r] == list(range(tiny.parts))
    paper = build_model({"model": "HSTL", "channels": [4, 8, 8], "class_num": 5})
    assert [len(r) for r in inspection.part_groups(paper).values()] == [1, 2, 2, 4, 64]
    ou = build_model({"model": "HSTL_OU", "channels": [4, 4, 8, 8], "class_num": 5})
    assert list(inspection.part_groups(ou)) == ["astp1", "astp2", "astp2_fta", "astp3", "astp4", "HPP"]


def test_part_groups_refuses_other_models():
    with pytest.raises(ValueError, match="HSTL model"):
        inspection.part_groups(torch.nn.Linear(2, 2))


def test_gem_exponents_one_per_region_and_one_for_hpp(tiny):
    model = build_model(TINY)
    exponents = inspection.gem_exponents(model)
    assert {k: len(v) for k, v in exponents.items()} == {"astp1": 1, "astp2": 2, "astp2_fta": 2, "astp3": 4, "HPP": 1}
    assert all(np.allclose(v, 6.5) for v in exponents.values())
    with torch.no_grad():
        model.astp3.hpp[2].p.fill_(3.0)
        model.HPP.p.fill_(2.0)
    exponents = inspection.gem_exponents(model)
    assert exponents["astp3"].tolist() == [6.5, 6.5, 3.0, 6.5]
    assert exponents["HPP"].tolist() == [2.0]


def test_fta_branch_weights_are_the_recorded_softmax(tiny, recorded):
    weights = inspection.fta_branch_weights(recorded)
    assert weights.shape == (2, 2, 8, 4)            # regions, n, c1, T' = (12 - 3) // 3 + 1
    assert ((weights > 0) & (weights < 1)).all()
    np.testing.assert_allclose(weights[1], recorded["fta.region1.weights"][0, :, :, :, 0, 0].numpy())
    np.testing.assert_allclose(1 - weights[0], recorded["fta.region0.weights"][1, :, :, :, 0, 0].numpy(), atol=1e-6)
    with pytest.raises(KeyError, match="fta.region"):
        inspection.fta_branch_weights({"arme1": recorded["arme1"]})


def test_activation_energy_is_mean_absolute_value_over_channels():
    maps = torch.zeros(1, 2, 3, 4, 5)
    maps[0, 0, 1] = -2.0
    maps[0, 1, 1] = 4.0
    energy = inspection.activation_energy(maps, step=1)
    assert energy.shape == (1, 4, 5) and np.allclose(energy, 3.0)
    assert np.allclose(inspection.activation_energy(maps, step=0), 0.0)
    with pytest.raises(ValueError, match=r"\[n, c, T, h, w\]"):
        inspection.activation_energy(maps[0], step=0)


def _toy_embeddings(seed: int = 0):
    """3 parts: part 0 = identity, part 1 = noise, part 2 = identity only for normal walks."""
    rng = np.random.default_rng(seed)
    rows = [(s, t, v) for s in range(6) for t in TYPES for v in ("000", "090")]
    labels = [f"{s:03d}" for s, _, _ in rows]
    types = [t for _, t, _ in rows]
    views = [v for _, _, v in rows]
    identity = np.array([[10.0 * s, 0.0] for s, _, _ in rows])
    noise = rng.normal(size=(len(rows), 2)) * 30
    nm_only = np.array([[10.0 * s if t.startswith("nm") else 100.0 + 5 * rng.normal(), 0.0] for s, t, _ in rows])
    return np.stack([identity, noise, nm_only], axis=1).astype(np.float32), labels, types, views


def test_part_rank1_finds_the_part_that_carries_identity():
    embeddings, labels, types, views = _toy_embeddings()
    accuracy = inspection.part_rank1(embeddings, labels, types, views)
    assert set(accuracy) == {"NM", "BG", "CL"} and accuracy["NM"].shape == (3,)
    assert accuracy["NM"][0] == accuracy["BG"][0] == accuracy["CL"][0] == 100.0
    assert accuracy["NM"][1] < 60.0
    assert accuracy["NM"][2] == 100.0 and accuracy["CL"][2] < 60.0


def test_group_rank1_keeps_or_drops_groups():
    embeddings, labels, types, views = _toy_embeddings()
    groups = {"identity": [0], "rest": [1, 2]}
    kept = inspection.group_rank1(embeddings, labels, types, views, groups, keep=True)
    dropped = inspection.group_rank1(embeddings, labels, types, views, groups, keep=False)
    assert kept["identity"]["CL"] == 100.0 and dropped["rest"]["CL"] == 100.0
    assert dropped["identity"]["CL"] < 60.0
    with pytest.raises(ValueError, match="leaves no part"):
        inspection.group_rank1(embeddings, labels, types, views, {"all": [0, 1, 2]}, keep=False)


def test_distance_separation_is_free_of_units():
    labels = ["a", "a", "b", "b"]
    distances = np.array([[0, 1, 5, 6], [1, 0, 5, 7], [5, 5, 0, 2], [6, 7, 2, 0]], dtype=float)
    result = inspection.distance_separation(distances, labels)
    assert result["auc"] == 1.0
    assert result["same"] == 1.5 and result["different"] == pytest.approx(23 / 4)
    assert inspection.distance_separation(1000 * distances, labels)["auc"] == 1.0
    reversed_ = inspection.distance_separation(np.where(np.eye(4, dtype=bool), 0, 10 - distances), labels)
    assert reversed_["auc"] == 0.0
    assert inspection.distance_separation(np.ones((4, 4)), labels)["auc"] == 0.5
    with pytest.raises(ValueError, match="do not match"):
        inspection.distance_separation(distances, labels[:3])


def test_architecture_walks_the_model_in_forward_order(tiny, recorded):
    stages = inspection.architecture(tiny, recorded)
    assert [s.name for s in stages] == ["arme1", "astp1", "arme2", "astp2", "fta", "astp2_fta", "arme3", "astp3",
                                        "TP", "HPP", "Head0", "Bn", "Head1"]
    by_name = {s.name: s for s in stages}
    assert by_name["arme1"].kind == "3D conv" and by_name["arme1"].regions == (32,)
    assert by_name["arme2"].kind == "ARME" and by_name["arme2"].regions == (20, 12)
    assert by_name["arme3"].regions == (4, 16, 8, 4)
    assert by_name["fta"].kind == "FTA" and by_name["fta"].shape == (2, 8, 4, 32, 22)
    assert by_name["arme2"].shape[2] == 12                   # FTA is where time is strided
    assert by_name["astp3"].shape == (2, 8, 4) and by_name["HPP"].regions == (1,) * 32
    assert by_name["Bn"].kind == "BNNeck" and by_name["Head1"].shape == (2, 5, tiny.parts)


def test_before_after_loads_the_checkpoint_and_keeps_the_fresh_model(tmp_path):
    torch.manual_seed(1)
    trained = build_model(TINY)
    with torch.no_grad():
        trained.HPP.p.fill_(3.25)
    path = tmp_path / "tiny-00010.pt"
    save_checkpoint(trained, path, iteration=10)
    before, after = inspection.before_after(TINY, path)
    assert not before.training and not after.training
    assert float(after.HPP.p.detach()) == 3.25 and float(before.HPP.p.detach()) == 6.5
    assert all(torch.equal(a, b) for a, b in zip(after.state_dict().values(), trained.state_dict().values()))


def test_plot_architecture_marks_the_fta_stride_and_the_parts(tiny, recorded):
    import matplotlib

    matplotlib.use("Agg")
    from hstl_core import viz

    fig = viz.plot_architecture(inspection.architecture(tiny, recorded), title="tiny")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "T 12\n\u2192 4" in texts
    assert any(t.startswith(f"{tiny.parts} parts concatenated") for t in texts)
    assert [t for t in texts if t in {"1", "2", "4", "32"}] == ["1", "2", "2", "4", "32"]
    assert viz.level_color("arme3") == viz.level_color("astp3") != viz.level_color("fta")


def test_plot_part_rank1_draws_one_line_per_condition(tiny):
    import matplotlib

    matplotlib.use("Agg")
    from hstl_core import viz

    groups = inspection.part_groups(tiny)
    accuracy = {c: np.linspace(0, 100, tiny.parts) for c in ("NM", "BG", "CL")}
    ax = viz.plot_part_rank1(accuracy, groups, chance=10.0)
    assert len(ax.lines) == 4 and [t.get_text() for t in ax.texts] == list(groups)
