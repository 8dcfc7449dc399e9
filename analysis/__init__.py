"""What the model learned and how it attends: image attention and rollout, attribution, temporal attention,
periodicity, token priors, the one capture of a window, and the views the tabs, the report and make eval draw.

Everything here computes and returns data (numpy arrays and small dataclasses); :mod:`viz` draws it.
"""
