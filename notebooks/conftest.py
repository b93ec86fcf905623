"""nbval settings for the notebooks: compare stdout and results, never stderr.

Progress bars and library warnings write to stderr and differ from run to run;
NOTEBOOKS.md asks that they never fail a checked cell.
"""
import os

os.environ.setdefault("TQDM_DISABLE", "1")


def pytest_collection_modifyitems(items):
    for item in items:
        notebook = getattr(item, "parent", None)
        skip = getattr(notebook, "skip_compare", None)
        if skip is not None and "stderr" not in skip:
            notebook.skip_compare = skip + ("stderr",)
