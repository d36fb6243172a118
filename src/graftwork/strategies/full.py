"""``full``: every layer group trainable in one stage, with discriminative rates (for 10k+ examples per class)."""

from __future__ import annotations

from .gradual import GradualStrategy, stage_schedule


class FullStrategy(GradualStrategy):
    """Gradual unfreezing's stage with all groups at once (or ``unfreeze`` groups when given)."""

    name = "full"

    def schedule(self, n_groups: int) -> list[int]:
        return stage_schedule(n_groups, self.name, self.unfreeze)
