"""The notebook runner stores each progress bar's final state and a kernel that does not warn."""
from __future__ import annotations

import sys

import nbformat

from hstl_core.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))

from run_notebooks import WIDGET_VIEW, kernel_config, store_final_bars, tqdm_bar_text  # noqa: E402


def bar_state(value: float, total: float, left: str, right: str, hidden: bool = False) -> dict[str, dict]:
    """Widget state of a tqdm notebook bar, as nbclient saves it (model id "box")."""
    return {
        "box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"],
                                                      "layout": "IPY_MODEL_lay"}},
        "lay": {"model_name": "LayoutModel", "state": {"visibility": "hidden" if hidden else None}},
        "l": {"model_name": "HTMLModel", "state": {"value": left}},
        "p": {"model_name": "FloatProgressModel", "state": {"value": value, "max": total}},
        "r": {"model_name": "HTMLModel", "state": {"value": right}},
    }


def test_final_bar_text_replaces_the_frozen_zero_percent():
    state = bar_state(150, 150, "iterations:\u2007100%", "\u2007150/150\u2007[02:10&lt;00:00]")
    assert tqdm_bar_text("box", state) == "iterations: 100%|" + "\u2588" * 10 + "| 150/150 [02:10<00:00]"
    half = bar_state(75, 150, "x:\u200750%", "\u200775/150")
    assert tqdm_bar_text("box", half) == "x: 50%|" + "\u2588" * 5 + " " * 5 + "| 75/150"


def test_closed_bars_are_dropped_and_other_widgets_kept():
    state = bar_state(3, 3, "gone", "3/3", hidden=True) | {"slider": {"model_name": "IntSliderModel", "state": {}}}
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [
        nbformat.v4.new_output("display_data", {WIDGET_VIEW: {"model_id": "box"}, "text/plain": "gone: 0%"}),
        nbformat.v4.new_output("display_data", {WIDGET_VIEW: {"model_id": "slider"}, "text/plain": "IntSlider()"}),
    ]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    store_final_bars(notebook, state)
    assert [output["data"]["text/plain"] for output in cell.outputs] == ["IntSlider()"]
    assert tqdm_bar_text("missing", state) is None


def test_kernel_transport_is_encrypted_where_libzmq_can():
    import zmq

    settings = kernel_config()
    if zmq.has("curve"):
        assert settings.KernelManager.transport_encryption == "auto"
