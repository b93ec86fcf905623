"""Pretreatment against hand-computed frames, and the dataset-level run."""
import json
import pickle

import cv2
import numpy as np
import pytest

from hstl_core.data.io import load_sequence
from hstl_core.data.preprocess import clean_mask, pretreat_frame, pretreat_sequence, preprocess_dataset


def frame_with(rows: slice, cols: slice, shape=(240, 320)) -> np.ndarray:
    frame = np.zeros(shape, np.uint8)
    frame[rows, cols] = 255
    return frame


def expected(size: int, cols: slice) -> np.ndarray:
    out = np.zeros((size, size), np.uint8)
    out[:, cols] = 255
    return out


# A person exactly img_size rows tall needs no resizing (320 wide stays 320 wide),
# so the expected 64 x 64 frame can be written down by hand: the median column of a
# 10-column blob is its 6th column, which lands at column 32 of the output.
def test_centred_blob_lands_on_column_32():
    out = pretreat_sequence([frame_with(slice(100, 164), slice(150, 160))])
    assert out.shape == (1, 64, 64) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], expected(64, slice(27, 37)))


def test_frame_touching_the_border_is_padded():
    out, reason = pretreat_frame(frame_with(slice(0, 64), slice(310, 320)))
    assert reason == "kept"
    np.testing.assert_array_equal(out, expected(64, slice(27, 37)))


def test_person_at_the_left_edge_is_padded():
    out, reason = pretreat_frame(frame_with(slice(50, 114), slice(0, 10)))
    assert reason == "kept"
    np.testing.assert_array_equal(out, expected(64, slice(27, 37)))


def test_mass_in_column_zero_has_no_center():
    assert pretreat_frame(frame_with(slice(50, 114), slice(0, 1))) == (None, "no center")


def test_tiny_blob_and_empty_frame_are_dropped():
    tiny = np.zeros((240, 320), np.uint8)
    tiny.flat[:39] = 255  # 39 * 255 = 9945 <= 10000
    assert pretreat_frame(tiny) == (None, "no data")
    tiny.flat[39] = 255  # 40 pixels: kept
    assert pretreat_frame(tiny)[1] == "kept"
    empty = np.zeros((240, 320), np.uint8)
    assert pretreat_frame(empty) == (None, "no data")
    assert pretreat_sequence([empty]) is None
    assert pretreat_sequence([empty, frame_with(slice(100, 164), slice(150, 160)), empty]).shape == (1, 64, 64)


def test_img_size_32():
    out = pretreat_sequence([frame_with(slice(100, 132), slice(150, 160))], img_size=32)
    np.testing.assert_array_equal(out[0], expected(32, slice(11, 21)))


def test_resized_frame_keeps_median_column_at_centre():
    out = pretreat_sequence([frame_with(slice(40, 200), slice(150, 170))])
    mass = np.cumsum(out[0].sum(axis=0, dtype=np.int64))
    assert np.nonzero(mass > mass[-1] / 2)[0][0] == 32


def test_clean_keeps_largest_component_and_fills_small_holes():
    frame = frame_with(slice(50, 150), slice(100, 140))
    frame[100, 120] = 0  # a one-pixel hole
    frame[10:14, 10:14] = 255  # a false blob
    cleaned = clean_mask(frame)
    np.testing.assert_array_equal(cleaned, frame_with(slice(50, 150), slice(100, 140)))


def write_frames(folder, frames):
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames, start=1):
        cv2.imwrite(str(folder / f"{i:03d}.png"), frame)


@pytest.fixture()
def raw_tree(tmp_path):
    raw = tmp_path / "raw"
    good = [frame_with(slice(100, 164), slice(150 + i, 160 + i)) for i in range(4)]
    write_frames(raw / "001" / "nm-01" / "090", good + [np.zeros((240, 320), np.uint8)])
    write_frames(raw / "001" / "nm-01" / "000", good[:1])
    bad = raw / "002" / "nm-01" / "090"
    write_frames(bad, good)
    (bad / "notes.txt").write_text("not an image")
    (bad / "005.png").write_bytes(b"garbage")
    colour = np.zeros((240, 320, 3), np.uint8)
    colour[100:164, 150:160] = (0, 0, 255)
    cv2.imwrite(str(bad / "006.png"), colour)
    write_frames(raw / "003" / "nm-01" / "090", good[:2] + [np.zeros((120, 160), np.uint8)])
    (raw / "stray.txt").write_text("x")
    return raw


def test_preprocess_dataset_report_and_resume(raw_tree, tmp_path):
    out = tmp_path / "out"
    report = preprocess_dataset(raw_tree, out, workers=1, min_frames=2)
    assert sorted(report["written"]) == ["001/nm-01/090", "002/nm-01/090"]
    assert report["skipped"]["001/nm-01/000"].startswith("skipped: 1 valid frames")
    assert "frames of different sizes" in report["skipped"]["003/nm-01/090"]
    assert report["dropped_frames"]["001/nm-01/090"] == {"005.png": "no data"}
    errors = "\n".join(report["errors"])
    for needle in ("stray.txt", "notes.txt: not an image file", "005.png: not a readable image", "006.png: colour image"):
        assert needle in errors
    assert load_sequence(out / "001" / "nm-01" / "090" / "090.npy").shape == (4, 64, 64)
    assert json.loads((out / "preprocess_report.json").read_text())["written"] == report["written"]
    again = preprocess_dataset(raw_tree, out, workers=1, min_frames=2)
    assert again["written"] == [] and sorted(again["skipped_existing"]) == sorted(report["written"])


def test_preprocess_pkl_and_refuses_output_inside_input(raw_tree, tmp_path):
    with pytest.raises(ValueError, match="inside the input"):
        preprocess_dataset(raw_tree, raw_tree / "out", workers=1)
    preprocess_dataset(raw_tree, tmp_path / "pkl", workers=1, fmt="pkl")
    with open(tmp_path / "pkl" / "001" / "nm-01" / "090" / "090.pkl", "rb") as handle:
        assert pickle.load(handle).shape == (4, 64, 64)
