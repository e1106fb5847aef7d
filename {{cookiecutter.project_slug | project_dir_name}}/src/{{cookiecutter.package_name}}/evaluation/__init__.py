"""The evaluate step: held-out metrics, plots and the post-train tests that gate promotion.

:mod:`.step` runs it: :mod:`.metrics` (precision of the positive class is the headline),
:mod:`.checks` (thresholds, invariance, directional expectations, minimum-functionality cases,
the champion comparison), :mod:`.fairness` (slices and fairness differences per sensitive
attribute) and :mod:`.plots`, into the typed :class:`~.report.EvaluationReport`. A check with
nothing to judge is *not assessed*, with the reason, never "passed"; whether that blocks
promotion is the gate's call (``gate.block_not_assessed``).
"""
