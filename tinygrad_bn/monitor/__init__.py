"""Watch a network train: per-layer statistics recorded through hooks, plots, a report page.

* recorder.py — `Monitor` (attach to a model, call ``step()`` after each optimizer step) and
  `Recording` (the statistics as numpy arrays; save/load as .npz + JSON, no pickle);
* plots.py — the figures (matplotlib, the ``plot`` extra): histograms per layer, the
  grad:data and update:data ratios over time, percentile bands, saturation, BatchNorm's
  statistics; each draws one recording or several side by side;
* report.py — the directory ``tinygrad-bn train --monitor DIR`` writes: the statistics, the
  PNGs and an index.html that says what to look for.

Read next: recorder.py.
"""
from .recorder import Monitor, Recording, activation_kind

__all__ = ["Monitor", "Recording", "activation_kind"]
