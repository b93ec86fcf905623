"""Evaluation protocols on tiny hand-made feature sets with known answers (spec G)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hstl_core.evaluation import (
    EVALUATORS,
    evaluate,
    evaluate_casia_b,
    evaluate_gait3d,
    evaluate_oumvlp,
    format_casia_b_table,
    pairwise_distance,
    save_results,
)


def test_pairwise_distance_euclidean_is_per_part_then_averaged():
    probe = np.zeros((1, 2, 2), dtype=np.float32)
    gallery = np.array([[[3.0, 4.0], [0.0, 1.0]]], dtype=np.float32)
    # Part distances 5 and 1, averaged: 3 (the concatenated vector's distance would be sqrt(26)).
    assert pairwise_distance(probe, gallery).tolist() == [[3.0]]


def test_pairwise_distance_cosine():
    probe = np.array([[[2.0, 0.0], [0.0, 1.0]]])
    gallery = np.array([[[1.0, 0.0], [3.0, 0.0]]])
    # Cosines 1 and 0, mean 0.5.
    assert pairwise_distance(probe, gallery, metric="cos")[0, 0] == pytest.approx(0.5)


def test_pairwise_distance_chunked_equals_unchunked_and_torch_equals_numpy():
    rng = np.random.default_rng(0)
    probe, gallery = rng.normal(size=(23, 5, 8)), rng.normal(size=(17, 5, 8))
    for metric in ("euc", "cos"):
        whole = pairwise_distance(probe, gallery, metric)
        assert whole.shape == (23, 17) and whole.dtype == np.float32
        np.testing.assert_allclose(pairwise_distance(probe, gallery, metric, chunk_size=4), whole, rtol=1e-6)
        np.testing.assert_allclose(pairwise_distance(torch.from_numpy(probe), torch.from_numpy(gallery), metric), whole, rtol=1e-6)
    reference = np.sqrt(((probe[:, None] - gallery[None]) ** 2).sum(-1)).mean(-1)
    np.testing.assert_allclose(pairwise_distance(probe, gallery), reference, rtol=1e-4)


def test_pairwise_distance_unknown_metric():
    with pytest.raises(ValueError, match="manhattan"):
        pairwise_distance(np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), metric="manhattan")


# Two subjects A and B, two views. One part, 2-d features. Gallery nm-01: at view 000
# A=(0,0), B=(10,0); at view 090 the subjects swap sides, A=(10,100), B=(0,100).
GALLERY = [("A", "nm-01", "000", (0, 0)), ("B", "nm-01", "000", (10, 0)),
           ("A", "nm-01", "090", (10, 100)), ("B", "nm-01", "090", (0, 100))]
# Probes near their own subject in their own view, hence near the wrong subject in the
# other view; except A nm-06 at 000, which sits near A's 090 gallery item.
PROBES = [("A", "nm-05", "000", (1, 0)), ("B", "nm-05", "000", (9, 0)), ("A", "nm-06", "000", (10, 99)),
          ("A", "nm-05", "090", (9, 100)), ("B", "nm-05", "090", (1, 100)),
          ("A", "bg-01", "000", (0.5, 0))]


def unpack(rows):
    labels, types, views, feats = zip(*rows)
    return np.array(feats, dtype=np.float32)[:, None, :], list(labels), list(types), list(views)


def test_casia_b_identical_view_exclusion_on_hand_made_grid():
    result = evaluate_casia_b(*unpack(GALLERY + PROBES))
    assert result["views"] == ["000", "090"]
    nm = result["NM"]
    # Probe view 000: same view right for A05, B05, wrong for A06 -> 66.67;
    # against view 090 only A06 is right -> 33.33. Probe view 090: 0 across, 100 same.
    assert nm["matrix"] == [[66.67, 33.33], [0.0, 100.0]]
    assert nm["per_view"] == [33.33, 0.0]
    assert nm["mean"] == pytest.approx(16.665)
    assert nm["mean_including_identical"] == pytest.approx(50.0)
    # BG has probes at view 000 only: row 090 is empty (NaN) and left out of the means.
    bg = result["BG"]
    assert bg["matrix"][0] == [100.0, 0.0] and all(math.isnan(x) for x in bg["matrix"][1])
    assert bg["per_view"][0] == 0.0 and math.isnan(bg["per_view"][1])
    assert bg["mean"] == 0.0 and bg["mean_including_identical"] == 50.0
    assert math.isnan(result["CL"]["mean"])


def test_casia_b_probe_without_gallery_counts_as_failure_unless_removed():
    lonely = [("C", "nm-05", "000", (100, 0))]
    kept = evaluate_casia_b(*unpack(GALLERY + PROBES + lonely))
    assert kept["NM"]["matrix"][0] == [50.0, 25.0]  # 2/4 and 1/4
    removed = evaluate_casia_b(*unpack(GALLERY + PROBES + lonely), remove_no_gallery=True)
    assert removed["NM"]["matrix"][0] == [66.67, 33.33]


def test_casia_b_torch_input_and_cos_metric():
    feats, labels, types, views = unpack(GALLERY + PROBES)
    assert evaluate_casia_b(torch.from_numpy(feats), labels, types, views)["NM"]["matrix"] == [[66.67, 33.33], [0.0, 100.0]]
    # Cosine distance ignores each vector's length: rescaling the features changes nothing.
    cos = evaluate_casia_b(feats, labels, types, views, metric="cos")
    scales = np.arange(1, len(feats) + 1, dtype=np.float32)[:, None, None]
    assert evaluate_casia_b(feats * scales, labels, types, views, metric="cos")["NM"] == cos["NM"]
    assert cos["NM"]["matrix"] != [[66.67, 33.33], [0.0, 100.0]]


def test_casia_b_cross_view_gallery():
    # Gallery nm-02 of every view; probes nm-01. Same-subject same-view items are removed.
    gallery = [("A", "nm-02", "000", (0, 0)), ("A", "nm-02", "090", (0, 5)),
               ("B", "nm-02", "000", (10, 0)), ("B", "nm-02", "090", (3, 0))]
    probes = [
        # A at 000, A000 removed: ranking B090 (2), A090 (5.1), B000 (9): wrong, AP 1/2.
        ("A", "nm-01", "000", (1, 0)),
        # B at 000, B000 removed: ranking B090 (6), A000 (9), A090: right, AP 1.
        ("B", "nm-01", "000", (9, 0)),
        # B at 090, B090 removed: ranking A000 (3.5), A090 (6.1), B000 (6.5): wrong, AP 1/3.
        ("B", "nm-01", "090", (3.5, 0)),
    ]
    result = evaluate_casia_b(*unpack(gallery + probes), cross_view_gallery=True)
    nm = result["NM"]
    assert nm["per_view"] == [50.0, 0.0] and nm["mean"] == 25.0
    assert nm["mAP_per_view"] == [75.0, 33.33] and nm["mAP"] == pytest.approx(54.165)
    table = format_casia_b_table(result).splitlines()
    assert table[2].split() == ["NM", "50.00", "0.00", "25.00"] and table[-1].startswith("mAP: NM 54.1")


OU_VIEWS = ["000", "015", "030", "045", "060", "075", "090", "180", "195", "210", "225", "240", "255", "270"]


def test_oumvlp_excludes_identical_view_with_divisor_13():
    # Gallery "01": A at view k is e_k, B at view k is 0.9 e_(14+k). Probe "00" of A at
    # view k is e_k + e_(k+1): distance 1 to A at views k and k+1, sqrt(2.81) to every
    # B, sqrt(3) to A elsewhere. So each probe row has 100 on the diagonal, 100 at the
    # next view and 0 elsewhere: excluding the diagonal 100 / 13 per view.
    rows, labels, types, views = [], [], [], []
    for k, view in enumerate(OU_VIEWS):
        a, b, probe = np.zeros(28), np.zeros(28), np.zeros(28)
        a[k], b[14 + k] = 1.0, 0.9
        probe[k], probe[(k + 1) % 14] = 1.0, 1.0
        for label, seq, vec in (("A", "01", a), ("B", "01", b), ("A", "00", probe)):
            rows.append(vec)
            labels.append(label)
            types.append(seq)
            views.append(view)
    result = evaluate_oumvlp(np.array(rows)[:, None, :], labels, types, views)
    assert set(result) == {"NM", "views"} and result["views"] == OU_VIEWS
    assert result["NM"]["per_view"] == pytest.approx([100 / 13] * 14)
    assert result["NM"]["mean"] == pytest.approx(100 / 13)
    assert result["NM"]["mean_including_identical"] == pytest.approx(200 / 14)

    # the engine passes the CASIA-B options to every identification protocol
    through_engine = evaluate("identification", "OUMVLP", np.array(rows)[:, None, :], labels, types, views,
                              cross_view_gallery=False, remove_no_gallery=False)
    assert through_engine["NM"]["per_view"] == pytest.approx([100 / 13] * 14)
    with pytest.raises(ValueError, match="cross-view-gallery protocol is defined for CASIA-B only"):
        evaluate("identification", "OUMVLP", np.array(rows)[:, None, :], labels, types, views, cross_view_gallery=True)


def gait3d_toy():
    # 1-d positions (as 2-d features with y = 0). Gallery: labels 1, 2, 1, 2, 4 at x = 1..5.
    gallery = [("1", "g1", "v", 1.0), ("2", "g2", "v", 2.0), ("1", "g3", "v", 3.0),
               ("2", "g4", "v", 4.0), ("4", "g5", "v", 5.0)]
    probes = [("1", "p1", "v", 0.0), ("2", "p2", "v", 0.9), ("3", "p3", "v", 10.0)]
    rows = gallery + probes
    feats = np.array([[[x, 0.0]] for *_, x in rows], dtype=np.float32)
    labels, types, views = ([r[i] for r in rows] for i in range(3))
    return feats, labels, types, views, {f"{l}-{t}-{v}" for l, t, v, _ in probes}


def test_gait3d_metrics_by_hand():
    # p1 (label 1) ranks 1,2,1,2,4 -> matches at 1 and 3: R1 yes, AP (1 + 2/3)/2 = 5/6, INP 2/3.
    # p2 (label 2) ranks 1,2,1,2,4 -> matches at 2 and 4: R1 no, R5 yes, AP (1/2 + 2/4)/2 = 1/2, INP 2/4.
    # p3 (label 3) has no gallery match: skipped. Rank-10 is capped at the 5-item gallery.
    feats, labels, types, views, probe_set = gait3d_toy()
    result = evaluate_gait3d(feats, labels, types, views, probe_set)
    assert result["num_probes"] == 3 and result["num_valid_probes"] == 2
    assert result["Rank-1"] == pytest.approx(50.0)
    assert result["Rank-5"] == pytest.approx(100.0) and result["Rank-10"] == pytest.approx(100.0)
    assert result["mAP"] == pytest.approx(100 * (5 / 6 + 1 / 2) / 2)
    assert result["mINP"] == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)


def test_evaluate_dispatch_and_errors():
    casia = unpack(GALLERY + PROBES)
    assert evaluate("identification", "SynGait", *casia)["NM"]["per_view"] == [33.33, 0.0]
    assert evaluate("evaluate_indoor_dataset", "CASIA-B", *casia, metric="euc")["NM"]["mean"] == pytest.approx(16.665)
    feats, labels, types, views, probe_set = gait3d_toy()
    via_alias = evaluate("evaluation_Gait3D", "Gait3D", feats, labels, types, views, probe_set=probe_set)
    assert via_alias == evaluate("evaluate_Gait3D", "Gait3D", feats, labels, types, views, probe_set=probe_set)
    assert set(EVALUATORS) >= {"identification", "evaluate_indoor_dataset", "evaluate_Gait3D", "evaluation_Gait3D"}
    with pytest.raises(ValueError, match="unknown eval_func 'rank_all'.*identification"):
        evaluate("rank_all", "CASIA-B", *casia)
    with pytest.raises(ValueError, match="Gait3D.*not supported"):
        evaluate("identification", "Gait3D", *casia)
    with pytest.raises(ValueError, match="probe_set"):
        evaluate("evaluate_Gait3D", "Gait3D", feats, labels, types, views)
    with pytest.raises(ValueError, match="labels"):
        evaluate_casia_b(casia[0], casia[1][:-1], casia[2], casia[3])


def test_table_and_json_output(tmp_path):
    result = evaluate_casia_b(*unpack(GALLERY + PROBES))
    table = format_casia_b_table(result)
    lines = table.splitlines()
    assert "000" in lines[1] and "090" in lines[1] and "mean" in lines[1]
    assert lines[2].split() == ["NM", "33.33", "0.00", f"{16.665:.2f}"]
    assert lines[3].split() == ["BG", "0.00", "-", "0.00"]
    path = tmp_path / "out" / "result.json"
    save_results(result, path)
    loaded = json.loads(path.read_text())
    assert loaded["NM"]["matrix"] == [[66.67, 33.33], [0.0, 100.0]]
    assert loaded["BG"]["per_view"][1] is None
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]
