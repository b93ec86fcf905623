"""Dataset index, layout errors, readers (npy / npz / safe pkl), partitions."""
import json
import pickle

import numpy as np
import pytest

from hstl_core.data.dataset import GaitDataset
from hstl_core.data.io import load_sequence, save_sequence
from hstl_core.data.partitions import casia_b, ou_mvlp, syngait


def make_tree(root, ids=("001", "002", "003"), types=("nm-01", "cl-01"), views=("000", "090")):
    for n, sid in enumerate(ids):
        for t in types:
            for v in views:
                save_sequence(root / sid / t / v / f"{v}.npy", np.full((5 + n, 8, 8), n, np.uint8))
    partition = root.parent / "partition.json"
    partition.write_text(json.dumps({"TRAIN_SET": list(ids[:2]), "TEST_SET": list(ids[2:])}))
    return partition


def test_index(tmp_path):
    partition = make_tree(tmp_path / "ds")
    train = GaitDataset(tmp_path / "ds", partition, "train")
    assert len(train) == 8 and train.label_set == ["001", "002"]
    assert train.types_list[:4] == ["cl-01", "cl-01", "nm-01", "nm-01"] and train.views_list[:2] == ["000", "090"]
    assert train.indices_dict["002"] == [4, 5, 6, 7] and train.frame_counts[4] == 6
    sils, sid, seq_type, view = train[5]
    assert sils.shape == (6, 8, 8) and (sid, seq_type, view) == ("002", "cl-01", "090")
    test = GaitDataset.from_data_cfg({"dataset_root": str(tmp_path / "ds"), "dataset_partition": str(partition), "cache": True}, train=False)
    assert test.label_set == ["003"] and test[0][0].shape == (7, 8, 8)


def test_layout_errors_name_the_folder(tmp_path):
    partition = make_tree(tmp_path / "ds")
    (tmp_path / "ds" / "001" / "nm-01" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="nm-01.*readme.txt"):
        GaitDataset(tmp_path / "ds", partition, "train")
    (tmp_path / "ds" / "001" / "nm-01" / "readme.txt").unlink()
    (tmp_path / "ds" / "002" / "cl-01" / "090" / "extra").mkdir()
    with pytest.raises(ValueError, match="090.*extra"):
        GaitDataset(tmp_path / "ds", partition, "train")


def test_readers(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.savez(tmp_path / "a.npz", arr)
    save_sequence(tmp_path / "a.pkl", arr, "pkl")
    for name in ("a.npz", "a.pkl"):
        np.testing.assert_array_equal(load_sequence(tmp_path / name), arr)
    with open(tmp_path / "b.pkl", "wb") as handle:
        pickle.dump(arr, handle, protocol=2)
    np.testing.assert_array_equal(load_sequence(tmp_path / "b.pkl"), arr)


class Evil:
    def __reduce__(self):
        return (print, ("owned",))


def test_pickle_with_anything_but_an_array_is_refused(tmp_path):
    with open(tmp_path / "evil.pkl", "wb") as handle:
        pickle.dump(Evil(), handle)
    with pytest.raises(ValueError, match=r"evil\.pkl.*builtins\.print"):
        load_sequence(tmp_path / "evil.pkl")
    with open(tmp_path / "list.pkl", "wb") as handle:
        pickle.dump([1, 2], handle)
    with pytest.raises(ValueError, match=r"list\.pkl.*list"):
        load_sequence(tmp_path / "list.pkl")


def test_partitions_match_the_facts(tmp_path):
    cb = casia_b()
    assert len(cb["TRAIN_SET"]) == 74 and cb["TRAIN_SET"][0] == "001" and cb["TEST_SET"][-1] == "124"
    assert "005" not in casia_b(include_005=False)["TRAIN_SET"] and len(casia_b(False)["TRAIN_SET"]) == 73
    ou = ou_mvlp()
    assert (len(ou["TRAIN_SET"]), len(ou["TEST_SET"])) == (5153, 5154) and ou["TEST_SET"][-1] == "10307"
    assert not set(ou["TRAIN_SET"]) & set(ou["TEST_SET"])
    small = syngait("small")
    assert small["TRAIN_SET"][0] == "001" and len(small["TRAIN_SET"]) + len(small["TEST_SET"]) == 24


def test_shipped_partitions_are_current():
    from hstl_core.data.partitions import PARTITION_ROOT

    assert json.loads((PARTITION_ROOT / "CASIA-B_include_005.json").read_text()) == casia_b()
    assert json.loads((PARTITION_ROOT / "OUMVLP.json").read_text()) == ou_mvlp()
    assert json.loads((PARTITION_ROOT / "SynGait-small.json").read_text()) == syngait("small")
