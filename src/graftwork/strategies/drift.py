"""Catastrophic forgetting, measured: how far each layer group's representation and weights move from the
pretrained ones while fine-tuning.

Every epoch, a fixed batch of held-out (validation) examples goes through the backbone, and each layer group's
output is compared with the pretrained backbone's output on the same batch by linear CKA (Kornblith et al. 2019,
"Similarity of Neural Network Representations Revisited": 1 = the same representation up to rotation and
scale, toward 0 = unrelated). The relative weight change ``||w - w0|| / ||w0||`` of each group is recorded
beside it. When the representation jumps (CKA of some unfrozen group falls by more than ``DRIFT_JUMP`` in one
epoch after a stage's first, or below ``DRIFT_FLOOR``) while validation does not improve, the pretrained
features are being destroyed rather than adapted: the learning rate is too high. That is reported as a
``forgetting`` finding, and with ``backoff`` the fine-tuner lowers the stage's rates and restores its best
weights.

``l2sp_penalty`` is L2-SP (Li et al. 2018, "Explicit Inductive Bias for Transfer Learning with Convolutional
Networks"): a pull of the trainable weights toward their pretrained values instead of toward zero.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..backbones.base import Backbone
from ..diagnostics import Finding

DRIFT_JUMP = 0.25  # a fall of CKA this large in one epoch, without validation gain, is forgetting
DRIFT_FLOOR = 0.2  # a CKA below this is forgetting whatever the trend
PROBE_BATCH = 64  # held-out examples used to compare representations


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA between two representations of the same examples (rows), via the n x n Gram matrices."""
    x = x.double().flatten(1)
    y = y.double().flatten(1)
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    kx, ky = x @ x.T, y @ y.T
    hsic = (kx * ky).sum()
    norm = torch.sqrt((kx * kx).sum() * (ky * ky).sum())
    return float(hsic / norm) if norm > 0 else 0.0


def _pool(out: Any) -> torch.Tensor | None:
    """One vector per example from a module's output: spatial / token average for 4-D / 3-D activations."""
    if isinstance(out, (tuple, list)):
        out = next((o for o in out if isinstance(o, torch.Tensor)), None)
    elif hasattr(out, "last_hidden_state"):
        out = out.last_hidden_state
    if not isinstance(out, torch.Tensor) or out.dim() < 2 or not out.is_floating_point():
        return None
    if out.dim() == 4:
        return out.float().mean((2, 3))
    if out.dim() == 3:
        return out.float().mean(1)
    return out.float().flatten(1)


class DriftMonitor:
    """Compares each layer group with its pretrained state on a fixed batch; created before fine-tuning starts,
    while the network still holds the pretrained weights."""

    def __init__(self, backbone: Backbone, batch: Any, device: torch.device, *, track_weights: bool = True):
        self.backbone, self.batch, self.device = backbone, batch, device
        self.groups = backbone.layer_groups()
        # without track_weights (LoRA: the base weights never change) only representations are compared
        self.start_weights = [[p.detach().clone() for p in g.params] if track_weights else [] for g in self.groups]
        self.start_acts = self._activations()

    def _activations(self) -> dict[str, torch.Tensor]:
        outputs: dict[str, torch.Tensor] = {}
        hooks = []
        for group in self.groups:
            for module in group.modules:  # the group's output: the last of its modules to run
                def hook(_m: nn.Module, _i: Any, out: Any, name: str = group.name) -> None:
                    pooled = _pool(out)
                    if pooled is not None:
                        outputs[name] = pooled.detach().cpu()
                hooks.append(module.register_forward_hook(hook))
        was_training = self.backbone.training
        try:
            self.backbone.eval()
            with torch.no_grad():
                self.backbone(self.backbone.batch_to(self.batch, self.device))
        finally:
            for h in hooks:
                h.remove()
            self.backbone.train(was_training)
        return outputs

    def measure(self) -> dict[str, dict[str, float]]:
        """``{"cka": {group: ...}, "weight_change": {group: ...}}`` against the pretrained state."""
        acts = self._activations()
        cka = {name: round(linear_cka(self.start_acts[name], acts[name]), 6)
               for name in self.start_acts if name in acts}
        change = {}
        for group, start in zip(self.groups, self.start_weights, strict=True):
            if not start:
                continue
            num = sum(float((p.detach() - s.to(p.device)).pow(2).sum()) for p, s in zip(group.params, start,
                                                                                        strict=True))
            den = sum(float(s.pow(2).sum()) for s in start)
            change[group.name] = round((num / den) ** 0.5 if den > 0 else 0.0, 6)
        return {"cka": cka, "weight_change": change}

    def l2sp_penalty(self) -> torch.Tensor:
        """Sum of squared distances of the trainable backbone weights from their pretrained values."""
        total = torch.zeros((), device=self.device)
        for group, start in zip(self.groups, self.start_weights, strict=True):
            if not start:
                continue
            for p, s in zip(group.params, start, strict=True):
                if p.requires_grad:
                    total = total + (p - s.to(p.device)).pow(2).sum()
        return total


def forgetting(rows: list[dict[str, Any]], unfrozen: list[str], improved: bool) -> Finding | None:
    """A ``forgetting`` finding when the last epoch's drift jumped (or fell below the floor) in an unfrozen
    group while validation did not improve; ``rows`` are the run's drift rows so far, oldest first.

    The first epoch of a stage is judged by the floor only: it is when newly unfrozen groups move most (the
    warm-up reaches their full rate, and the head re-adapts to features that start changing), so a large
    one-epoch change then is the stage starting, not yet a sign of harm. Measured on MobileNetV2 / Fashion-MNIST
    (1,000 per class), the top group's CKA fell from 1 to 0.4 in a first epoch that was below the probe on
    validation, and the stage ended 4 points above it. From the second epoch on, a fall of more than
    ``DRIFT_JUMP`` in one epoch without validation gain is forgetting."""
    if improved or not rows:
        return None
    now = rows[-1]["cka"]
    first_of_stage = rows[-1].get("epoch") == 1
    before = rows[-2]["cka"] if len(rows) > 1 else {g: 1.0 for g in now}
    worst, drop = None, 0.0
    for g in unfrozen:
        if g not in now:
            continue
        d = 0.0 if first_of_stage else before.get(g, 1.0) - now[g]
        if (d > DRIFT_JUMP or now[g] < DRIFT_FLOOR) and (worst is None or d > drop or now[g] < now[worst]):
            worst, drop = g, d
    if worst is None:
        return None
    how = f"down {drop:.2f} in one epoch" if drop > DRIFT_JUMP else f"below {DRIFT_FLOOR:g}"
    return Finding(
        code="forgetting", severity="warning", value=now[worst], metric=f"CKA of {worst} with the pretrained",
        message=(f"the representation of {worst} moved far from the pretrained one (CKA {now[worst]:.2f}, {how}) "
                 "while validation did not improve: the pretrained features are being overwritten rather than "
                 "adapted"),
        advice="lower the learning rate (--lr, --lr-ratio) or add --l2sp; strategy auto backs off by itself",
        details={"stage_epoch": rows[-1].get("epoch"), "cka": now, "previous": before})
