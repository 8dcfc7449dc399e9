"""INT training: the sample contract, dataset readers, augmentation, losses and metrics, the
phases as data (:mod:`training.phases`, ``configs/``), the trainer (``python -m cli.train``) and evaluation
(``python -m cli.evaluate``).

Imports ``int_model`` only (never ``gradio``); see :mod:`training.sample` for the data contract that ties
datasets, augmentation, losses and the trainer together.
"""
