"""Class 5: gaps in a test set are left out or refused, never scored as zeros."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hstl_core.data.io import save_sequence
from hstl_core.data.sampling import build_loader
from hstl_core.evaluation import evaluate_casia_b, format_casia_b_table

VIEWS = ("000", "090", "180")


def casia_like(ids=("075", "076", "077"), drop_gallery_view: str | None = None):
    """One well-separated embedding per id (plus noise) for every type and view."""
    rng = np.random.default_rng(0)
    centres = {sid: rng.normal(size=(2, 4)) * 10 for sid in ids}
    rows, labels, types, views = [], [], [], []
    for sid in ids:
        for seq_type in ("nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "cl-01"):
            for view in VIEWS:
                if seq_type.startswith("nm-0") and seq_type <= "nm-04" and view == drop_gallery_view:
                    continue
                rows.append(centres[sid] + rng.normal(size=(2, 4)) * 0.1)
                labels.append(sid)
                types.append(seq_type)
                views.append(view)
    return np.stack(rows).astype(np.float32), labels, types, views


def test_a_view_without_gallery_is_left_out_not_scored_zero():
    result = evaluate_casia_b(*casia_like(drop_gallery_view="090"))
    column = [row[1] for row in result["NM"]["matrix"]]
    assert all(math.isnan(x) for x in column), column
    assert result["NM"]["mean"] == pytest.approx(100.0), "the other cells are all correct"
    assert format_casia_b_table(result).splitlines()[2].split()[1:] == ["100.00"] * 4


def test_a_test_set_without_gallery_is_an_error():
    embeddings, labels, types, views = casia_like()
    keep = [i for i, t in enumerate(types) if t not in ("nm-01", "nm-02", "nm-03", "nm-04")]
    with pytest.raises(ValueError, match="no gallery sequence"):
        evaluate_casia_b(embeddings[keep], [labels[i] for i in keep], [types[i] for i in keep], [views[i] for i in keep])


def test_a_single_test_id_warns():
    with pytest.warns(UserWarning, match="single subject .*100 % by construction"):
        result = evaluate_casia_b(*casia_like(ids=("075",)))
    assert result["NM"]["mean"] == 100.0


def test_a_zero_frame_probe_is_named_and_skipped(tmp_path):
    root = tmp_path / "ds"
    for sid in ("075", "076"):
        for seq_type in ("nm-01", "nm-05"):
            frames = 0 if (sid, seq_type) == ("076", "nm-05") else 5
            save_sequence(root / sid / seq_type / "090" / "090.npy", np.full((frames, 8, 8), 255, np.uint8))
    (tmp_path / "p.json").write_text(json.dumps({"TRAIN_SET": [], "TEST_SET": ["075", "076"]}))
    data_cfg = {"dataset_root": str(root), "dataset_partition": str(tmp_path / "p.json"), "num_workers": 0}
    engine_cfg = {"sampler": {"batch_size": 1, "sample_type": "all_ordered"}, "transform": [{"type": "BaseSilTransform"}]}
    with pytest.warns(UserWarning, match=r"0 frames: .*076/nm-05/090/090.npy"):
        loader = build_loader(data_cfg, engine_cfg, train=False)
    assert [batch["types"][0] for batch in loader] == ["nm-01", "nm-05", "nm-01"]
