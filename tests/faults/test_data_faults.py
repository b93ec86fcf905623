"""Class 6: bad data files are named (or left out with a note), never silent or cryptic."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hstl_core.cli import main as cli
from hstl_core.data.dataset import GaitDataset
from hstl_core.data.io import load_sequence, save_sequence
from hstl_core.data.partitions import load_partition
from hstl_core.data.preprocess import preprocess_dataset
from hstl_core.data.sampling import select_frames


def dataset(root, arrays: dict[str, np.ndarray], raw_bytes: dict[str, bytes] | None = None):
    """A train split of ids 001/002 with one sequence each; ``arrays`` replaces some."""
    for sid in ("001", "002"):
        array = arrays.get(sid, np.full((4, 8, 8), 255, np.uint8))
        save_sequence(root / sid / "nm-01" / "090" / "090.npy", array)
    for sid, data in (raw_bytes or {}).items():
        (root / sid / "nm-01" / "090" / "090.npy").write_bytes(data)
    partition = root.parent / "partition.json"
    partition.write_text(json.dumps({"TRAIN_SET": ["001", "002"], "TEST_SET": []}))
    return partition


def npy_bytes(array: np.ndarray, tmp_path) -> bytes:
    np.save(tmp_path / "scratch.npy", array)
    return (tmp_path / "scratch.npy").read_bytes()


def test_a_truncated_npy_is_named_when_the_index_is_built(tmp_path):
    whole = npy_bytes(np.full((4, 8, 8), 255, np.uint8), tmp_path)
    partition = dataset(tmp_path / "ds", {}, {"002": whole[:-40]})
    with pytest.raises(ValueError, match=r"002/nm-01/090/090.npy: truncated .npy"):
        GaitDataset(tmp_path / "ds", partition, "train")
    with pytest.raises(ValueError, match=r"090.npy: cannot read the sequence"):
        load_sequence(tmp_path / "ds" / "002" / "nm-01" / "090" / "090.npy")


@pytest.mark.parametrize("array, message", [
    (np.zeros((8, 8), np.uint8), r"shape \(8, 8\)"),
    (np.zeros((2, 4, 8, 8), np.uint8), r"shape \(2, 4, 8, 8\)"),
    (np.zeros((4, 8, 8), np.float32), r"this array is float32"),
], ids=["2-D", "4-D", "float32"])
def test_a_mis_shaped_or_mis_typed_npy_is_named(tmp_path, array, message):
    partition = dataset(tmp_path / "ds", {}, {"001": npy_bytes(array, tmp_path)})
    with pytest.raises(ValueError, match=rf"001/nm-01/090/090.npy: .*{message}"):
        GaitDataset(tmp_path / "ds", partition, "train")


def test_a_zero_frame_sequence_is_left_out_with_its_name(tmp_path):
    partition = dataset(tmp_path / "ds", {"002": np.zeros((0, 8, 8), np.uint8)})
    with pytest.warns(UserWarning, match=r"0 frames: .*002/nm-01/090/090.npy"):
        data = GaitDataset(tmp_path / "ds", partition, "train")
    assert data.label_list == ["001"] and data.frame_counts == [4]
    with pytest.raises(ValueError, match="0 frames"):
        select_frames(0, {"sample_type": "fixed_ordered", "frames_num_fixed": 30}, np.random.default_rng(0))


def test_bool_masks_are_read_as_0_and_255(tmp_path):
    mask = np.zeros((3, 8, 8), bool)
    mask[:, 2:6] = True
    save_sequence(tmp_path / "m.npy", mask)
    sils = load_sequence(tmp_path / "m.npy")
    assert sils.dtype == np.uint8 and sils.max() == 255 and int(sils.sum()) == 255 * int(mask.sum())


def test_integer_partition_ids_get_a_clear_error(tmp_path):
    path = tmp_path / "partition.json"
    path.write_text(json.dumps({"TRAIN_SET": [1, 2], "TEST_SET": [3]}))
    with pytest.raises(ValueError, match=r"partition.json: TRAIN_SET holds int 1; .*\"001\", not 1"):
        load_partition(path)


def raw_sequence(folder, frames: int = 3) -> None:
    folder.mkdir(parents=True)
    frame = np.zeros((120, 160), np.uint8)
    frame[30:110, 70:90] = 255
    for j in range(frames):
        cv2.imwrite(str(folder / f"{j:03d}.png"), frame)


def test_preprocess_exits_non_zero_when_it_writes_nothing(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw_sequence(raw / "001" / "nm-01" / "090")
    assert cli(["preprocess", str(raw / "001"), str(tmp_path / "a"), "--workers", "1"]) == 2
    assert "no sequence found" in capsys.readouterr().err
    assert cli(["preprocess", str(raw), str(tmp_path / "b"), "--workers", "1", "--min_frames", "10"]) == 1
    assert "no sequence was written" in capsys.readouterr().err
    assert cli(["preprocess", str(raw), str(tmp_path / "c"), "--workers", "1"]) == 0


@pytest.mark.parametrize("size", [0, -64, 63])
def test_an_impossible_img_size_is_refused_up_front(tmp_path, size):
    raw = tmp_path / "raw"
    raw_sequence(raw / "001" / "nm-01" / "090")
    with pytest.raises(ValueError, match=rf"img_size must be a positive even number of pixels .*not {size}"):
        preprocess_dataset(raw, tmp_path / "out", img_size=size, workers=1)
    assert not (tmp_path / "out").exists(), "nothing written"
