"""Config paths resolve as OpenGait users expect, from any working directory."""
from hstl_core.paths import DATA_ROOT, REPO_ROOT, resolve_data_path


def test_official_partition_path_finds_the_shipped_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = resolve_data_path("./misc/partitions/CASIA-B_include_005.json")
    assert found == (DATA_ROOT / "partitions" / "CASIA-B_include_005.json").resolve()


def test_repository_relative_path_works_from_the_notebooks_folder(monkeypatch):
    monkeypatch.chdir(REPO_ROOT / "notebooks")
    assert resolve_data_path("data/partitions/SynGait-small.json") == (DATA_ROOT / "partitions" / "SynGait-small.json").resolve()


def test_working_directory_wins_and_missing_paths_are_reported_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert resolve_data_path("data") == (tmp_path / "data").resolve()
    assert resolve_data_path("no/such/root") == tmp_path / "no" / "such" / "root"
