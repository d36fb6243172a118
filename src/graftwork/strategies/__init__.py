"""Transfer strategies: how much of the backbone is adapted, and how the head is trained."""

from .head import LinearHead, ProbeFit, fit_probe
from .plan import Plan, make_plan

__all__ = ["LinearHead", "ProbeFit", "fit_probe", "Plan", "make_plan"]
