"""SynGait-Wild: determinism, nuisances, statistics, partition with PROBE_SET, Gait3D protocol."""
import json

import numpy as np
import pytest

from hstl_core.data import wild
from hstl_core.data.partitions import PARTITION_ROOT, syngait
from hstl_core.data.preprocess import pretreat_sequence
from hstl_core.data.synthetic import make_subject
from hstl_core.data.wild_scene import SITE_NAMES, SITES, TiltedCamera, Walk
from hstl_core.evaluation import evaluate


def test_sequence_is_deterministic_and_shaped():
    seq = wild.generate_wild_sequence(3, "wl-02", seed=1)
    assert seq.frames.dtype == np.uint8 and seq.frames.shape[1:] == (240, 320)
    assert set(np.unique(seq.frames)) <= {0, 255}
    lo, hi = wild.WILD_PRESETS["wild"].frames
    assert 1 <= len(seq.frames) <= seq.nominal and lo <= seq.nominal <= hi
    assert all(flag.shape == (len(seq.frames),) for flag in seq.flags.values())
    wild.generate_wild_sequence(4, "wl-01", seed=1)  # generating another changes nothing
    again = wild.generate_wild_sequence(3, "wl-02", seed=1)
    assert again.frames.tobytes() == seq.frames.tobytes() and again.site == seq.site
    other_seed = wild.generate_wild_sequence(3, "wl-02", seed=2)
    assert other_seed.site == seq.site  # the site does not depend on the seed; the walk does
    assert other_seed.frames.shape != seq.frames.shape or other_seed.frames.tobytes() != seq.frames.tobytes()


def test_same_subject_as_the_casia_b_shaped_default_preset():
    a, b = wild.wild_subject(5, seed=2), make_subject(5, "default", seed=2)
    assert a.body == b.body and a.outfit == b.outfit and a.style.cadence == b.style.cadence
    assert all(np.array_equal(a.style.curves[j], b.style.curves[j]) for j in a.style.curves)


def test_tilted_camera_centres_the_hips_of_a_walker_in_the_middle_of_its_site():
    for site in SITES:
        camera = TiltedCamera(site.height, site.pitch_deg - site.aim_deg, 500.0)
        (x, y), _ = camera.project(np.array([site.distance, 0.0, 0.9]))
        assert abs(x - 160) < 1e-6 and abs(y - 120) < 1e-6


def test_walk_turns_and_keeps_its_speed():
    walk = Walk(np.zeros(2), 0.0, np.pi / 2, 1.0, 1.0, 1.5)
    t = np.array([0.0, 0.5, 3.0, 4.0])
    assert np.allclose(walk.heading_at(t), [0.0, 0.0, np.pi / 2, np.pi / 2])
    pos = walk.positions(t)
    assert np.allclose(pos[1], [0.75, 0.0], atol=0.02)
    assert np.allclose(pos[3] - pos[2], [0.0, 1.5], atol=0.02)


def test_statistics_of_a_few_subjects_are_wild():
    stats = wild.wild_statistics(subjects=[1, 2])
    assert stats["sequences"] == 2 * wild.WILD_PRESETS["wild"].sequences
    assert stats["frames"] < stats["nominal_frames"]
    for key in ("dropped", "occluded", "occluded_static", "occluded_walker", "cut", "seg_fault", "holes", "merge", "shadow"):
        assert 0.0 < stats[key] < 1.0, key
    assert stats["occluded"] <= stats["occluded_static"] + stats["occluded_walker"]


def test_clean_knobs_give_no_nuisance_flags():
    calm = wild.WildPreset(subjects=2, sequences=2, frames=(10, 12), fps=(25.0, 25.0), drop=0.0, other_walker=0.0,
                           turn=0.0, noise=0.0, body_spread=0.8, style_spread=0.8, render_scale=0.5, train_fraction=0.5)
    seq = wild.generate_wild_sequence(1, "wl-01", calm)
    counts = wild.frame_counts(seq)
    assert len(seq.frames) == seq.nominal
    assert counts["seg_fault"] == counts["occluded_walker"] == counts["empty"] == 0


def test_most_frames_survive_the_real_preprocessing():
    seq = wild.generate_wild_sequence(2, "wl-03")
    sils = pretreat_sequence(seq.frames, 32)
    assert sils is not None and len(sils) >= 0.5 * len(seq.frames) and sils.shape[1:] == (32, 32)


def test_a_walk_off_to_the_side_stays_in_view():
    seq = wild.generate_wild_sequence(5, "wl-01")  # once walked wholly outside the frame
    sils = pretreat_sequence(seq.frames, 32)
    assert sils is not None and len(sils) >= 0.5 * len(seq.frames)


def test_partition_has_one_probe_per_test_id_that_names_a_real_sequence():
    part = syngait("wild")
    knobs = wild.WILD_PRESETS["wild"]
    assert len(part["TRAIN_SET"]) + len(part["TEST_SET"]) == knobs.subjects and len(part["TEST_SET"]) >= 50
    assert not set(part["TRAIN_SET"]) & set(part["TEST_SET"])
    assert [p[:3] for p in part["PROBE_SET"]] == part["TEST_SET"]
    for probe in part["PROBE_SET"][:5]:
        sid, kind, number, site = probe.split("-")
        assert site == wild.site_of(int(sid), f"{kind}-{number}") and site in SITE_NAMES
    assert json.loads((PARTITION_ROOT / "SynGait-wild.json").read_text()) == part


def test_wild_uses_the_gait3d_protocol_not_casia_b():
    labels = ["076", "076", "077", "077"]
    types = ["wl-01", "wl-02", "wl-01", "wl-02"]
    views = ["c01", "c02", "c03", "c01"]
    emb = np.array([[[0.0]], [[0.1]], [[1.0]], [[1.2]]], np.float32)
    result = evaluate("evaluate_Gait3D", "SynGait-Wild", emb, labels, types, views, probe_set={"076-wl-01-c01", "077-wl-01-c03"})
    assert result["Rank-1"] == 100.0 and result["num_probes"] == 2
    with pytest.raises(ValueError, match="evaluate_Gait3D"):
        evaluate("identification", "SynGait-Wild", emb, labels, types, views)


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="sequence"):
        wild.generate_wild_sequence(1, "nm-01")
    with pytest.raises(ValueError, match="preset"):
        wild.generate_wild_sequence(1, "wl-01", "nope")
    with pytest.raises(ValueError, match="outside"):
        wild.wild_statistics(subjects=[0])


def test_engine_evaluation_summarises_a_wild_test_set(tmp_path):
    from hstl_core.engine.evaluator import evaluate_features

    partition = tmp_path / "wild.json"
    partition.write_text(json.dumps({"TRAIN_SET": ["001"], "TEST_SET": ["076", "077"], "PROBE_SET": ["076-wl-01-c01", "077-wl-01-c03"]}))
    cfg = {"evaluator_cfg": {"eval_func": "evaluate_Gait3D"},
           "data_cfg": {"dataset_name": "SynGait-Wild", "dataset_partition": str(partition)}}
    features = {"embeddings": np.array([[[0.0]], [[0.1]], [[1.0]], [[1.2]]], np.float32), "labels": ["076", "076", "077", "077"],
                "types": ["wl-01", "wl-02", "wl-01", "wl-02"], "views": ["c01", "c02", "c03", "c01"]}
    result = evaluate_features(cfg, features)
    assert result["summary"] == {"Rank-1": 100.0, "Rank-5": 100.0, "mAP": 100.0, "mINP": 100.0}


def test_a_set_made_by_an_older_generator_is_stale(tmp_path):
    from hstl_core.data import syngait

    manifest = syngait._manifest("wild", 32, 0)
    assert manifest["knobs"]["generator_version"] == wild.GENERATOR_VERSION
    manifest["knobs"]["generator_version"] -= 1
    (tmp_path / syngait.MANIFEST).write_text(json.dumps(manifest))
    assert not syngait.is_complete(tmp_path, "wild", 32, 0)
