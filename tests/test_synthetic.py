"""SynGait: constants, determinism, identity in body and motion, conditions, layout."""
import dataclasses

import numpy as np
import pytest

from hstl_core.data.preprocess import pretreat_sequence
from hstl_core.data.synthetic import (
    CONDITIONS, PRESETS, VIEWS, _write_raw_task, generate_sequence, make_subject, render_sequence,
)


def test_constants():
    assert VIEWS == ["000", "018", "036", "054", "072", "090", "108", "126", "144", "162", "180"]
    assert CONDITIONS == ["nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02"]
    assert {"small", "default"} <= set(PRESETS)
    assert PRESETS["default"].subjects == 124


def test_sequence_shape_values_and_determinism():
    seq = generate_sequence(2, "bg-01", "054", "small", seed=3)
    lo, hi = PRESETS["small"].frames
    assert seq.dtype == np.uint8 and seq.shape[1:] == (240, 320) and lo <= len(seq) <= hi
    assert set(np.unique(seq)) <= {0, 255}
    generate_sequence(5, "nm-01", "000", "small", seed=3)  # generating another changes nothing
    assert generate_sequence(2, "bg-01", "054", "small", seed=3).tobytes() == seq.tobytes()
    assert generate_sequence(2, "bg-01", "054", "small", seed=4).tobytes() != seq.tobytes()


def gei(subject, type_seq, view, walker=None, preset="small"):
    walker = walker or make_subject(subject, preset)
    sils = pretreat_sequence(render_sequence(walker, subject, type_seq, view, preset), 32)
    return sils.astype(np.float32).mean(axis=0) / 255.0


def test_identity_lives_in_the_motion():
    a, b = make_subject(1, "small"), make_subject(2, "small")
    same_body_other_style = dataclasses.replace(a, style=b.style)
    raw_a = render_sequence(a, 1, "nm-01", "090", "small")
    raw_mixed = render_sequence(same_body_other_style, 1, "nm-01", "090", "small")
    assert raw_a.shape == raw_mixed.shape
    assert np.mean(raw_a != raw_mixed) > 0.005
    walk_a, walk_mixed = gei(1, "nm-01", "090", a), gei(1, "nm-01", "090", same_body_other_style)
    assert np.abs(walk_a - walk_mixed).mean() > 0.02


def test_same_subject_is_closer_than_another_subject():
    ref = gei(1, "nm-01", "090")
    same = np.abs(ref - gei(1, "nm-02", "090")).mean()
    others = [np.abs(ref - gei(s, "nm-02", "090")).mean() for s in (2, 3, 4)]
    assert same < min(others)


def test_outfit_is_per_subject_and_changes_the_silhouette():
    assert make_subject(7, "small").outfit == make_subject(7, "default").outfit
    normal, coat = gei(3, "nm-01", "090"), gei(3, "cl-01", "090")
    assert coat.sum() > normal.sum() * 1.05  # the coat widens the body


def test_write_raw_layout_and_resume(tmp_path):
    written, frames = _write_raw_task((str(tmp_path), 4, "cl-02", "small", 0))
    assert written == 11
    folder = tmp_path / "004" / "cl-02" / "090"
    names = sorted(p.name for p in folder.iterdir())
    assert names[0] == "004-cl-02-090-001.png" and len(names) == len(generate_sequence(4, "cl-02", "090", "small"))
    assert sum(len(list((tmp_path / "004" / "cl-02" / v).iterdir())) for v in VIEWS) == frames
    assert _write_raw_task((str(tmp_path), 4, "cl-02", "small", 0)) == (0, 0)


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="condition"):
        generate_sequence(1, "xx-01", "090", "small")
    with pytest.raises(ValueError, match="view"):
        generate_sequence(1, "nm-01", "091", "small")
    with pytest.raises(ValueError, match="preset"):
        generate_sequence(1, "nm-01", "090", "nope")


def test_syngait_set_is_recognised_as_complete(tmp_path):
    import json

    from hstl_core.data import syngait

    assert not syngait.is_complete(tmp_path, "small", 32, 0)
    (tmp_path / syngait.MANIFEST).write_text(json.dumps(syngait._manifest("small", 32, 0) | {"sequences": 1}))
    assert syngait.is_complete(tmp_path, "small", 32, 0)
    assert not syngait.is_complete(tmp_path, "small", 64, 0)
