"""Data: SynGait generation, silhouette preprocessing, datasets, sampling, transforms.

Modules (each one job): ``walker`` / ``render`` / ``synthetic`` / ``syngait`` make
SynGait; ``preprocess`` pretreats raw frames; ``io`` reads and writes sequence arrays;
``partitions`` holds the train/test splits; ``dataset``, ``sampling`` and
``transforms`` feed the model; ``cli`` adds the ``synth`` and ``preprocess`` commands.
"""
