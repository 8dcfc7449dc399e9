"""Plotly figures of what the model holds and does, and their export as interactive HTML and PNG.

Every builder is a pure function: arrays (and the small result types of :mod:`analysis.attention`,
:mod:`analysis.attribution`, :mod:`analysis.temporal`, :mod:`analysis.periodicity`, :mod:`analysis.priors`) in, a new
``plotly.graph_objects.Figure`` out; inputs are never modified. The app shows the figures as they are; the
report command writes each as HTML (hover, zoom, legend picking) and PNG. One module per subject:

* :mod:`viz.figures.priors`: the token priors (prior angles, prior meshes, joint-token similarity);
* :mod:`viz.figures.attention`: image attention (all tokens over a crop, one token in the frame, attribution);
* :mod:`viz.figures.temporal`: temporal attention (matrices, frame pairs, lag profiles, periods) and the
  rotation curves and jitter it is compared with;
* :mod:`viz.figures.training`: training loss and validation metrics;
* :mod:`viz.figures.images`: images inside figures (data URIs, signed overlays, labelled montages);
* :mod:`viz.figures.export`: writing figures as HTML and PNG;
* :mod:`viz.figures.matplotlib_png`: the PNG fallback when kaleido cannot run;
* :mod:`viz.figures.style`: colours and sizes the modules share.
"""
