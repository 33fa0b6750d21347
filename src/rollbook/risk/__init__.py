"""Risk analytics outside the state transition function (floats and NumPy allowed here).

Nothing in this package may feed a state transition: its results are for dashboards, alerts
and whole-venue revaluation. The deterministic, consensus-critical valuations live in
``rollbook.execution.options``.
"""

from rollbook.risk.vectorised import Black76Arrays, black76_vectorised, norm_cdf, norm_pdf

__all__ = ["Black76Arrays", "black76_vectorised", "norm_cdf", "norm_pdf"]
