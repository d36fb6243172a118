"""Transfer strategies: how much of the backbone is adapted, and how the head is trained."""

from .head import HeadTraining, LinearHead, train_head
from .plan import Plan, make_plan

__all__ = ["HeadTraining", "LinearHead", "train_head", "Plan", "make_plan"]
