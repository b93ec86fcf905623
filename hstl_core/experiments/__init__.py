"""Research grids: configs x seeds x benchmarks, run by the engine, compared seed by seed.

* ``load_grid(path)`` - a grid YAML file (see :mod:`hstl_core.experiments.grid`);
* ``run_grid(grid, runs, output_root)`` - train and test the runs not yet done;
* ``write_report(grid)`` - ``results.json``, ``results.csv`` and ``summary.md``;
* ``collect``, ``cell_table``, ``paired`` - the same numbers for a notebook;
* ``gei_reference(cfg)`` - a training-free reference: gait energy images under the benchmark's protocol.

``python -m hstl_core experiment GRID.yaml`` does all of it from the command line.
"""
from hstl_core.experiments.grid import Benchmark, Grid, RunSpec, load_grid
from hstl_core.experiments.reference import gei_reference
from hstl_core.experiments.results import Paired, cell_table, collect, paired, subset_stability, write_report
from hstl_core.experiments.runner import code_revision, execute, model_cost, run_grid, select

__all__ = [
    "Benchmark",
    "Grid",
    "Paired",
    "RunSpec",
    "cell_table",
    "code_revision",
    "collect",
    "execute",
    "gei_reference",
    "load_grid",
    "model_cost",
    "paired",
    "run_grid",
    "select",
    "subset_stability",
    "write_report",
]
