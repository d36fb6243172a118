"""Layer groups drive freezing, BatchNorm mode and per-group learning rates."""

from __future__ import annotations

import pytest
import torch

from graftwork.backbones import build_backbone
from graftwork.strategies import LinearHead
from graftwork.strategies.base import TransferNet
from graftwork.strategies.freezing import discriminative_rates, param_groups, set_train_mode, unfreeze_top
from graftwork.strategies.gradual import stage_schedule


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    return build_backbone("timm:test_efficientnet", pretrained=False)


@pytest.mark.parametrize("n", [0, 1, 3])
def test_unfreeze_top_sets_requires_grad_on_exactly_those_groups(cnn, n):
    groups = cnn.layer_groups()
    unfrozen = unfreeze_top(cnn, n)
    assert [g.name for g in unfrozen] == [g.name for g in groups[len(groups) - n:]] if n else unfrozen == []
    trainable = {id(p) for g in unfrozen for p in g.params}
    for p in cnn.parameters():
        assert p.requires_grad == (id(p) in trainable)


def test_unfreeze_works_for_transformer_groups(tiny_bert):
    b = build_backbone(f"hf:{tiny_bert}")
    names = [g.name for g in b.layer_groups()]
    assert names[0] == "embeddings" and names[1].endswith(".0") and names[2].endswith(".1")
    unfreeze_top(b, 1)
    last = {id(p) for p in b.layer_groups()[-1].params}
    assert all(p.requires_grad == (id(p) in last) for p in b.parameters())


def test_rates_decay_geometrically_from_the_head(cnn):
    unfrozen = unfreeze_top(cnn, 3)
    rates = discriminative_rates(unfrozen, head_lr=1e-3, lr_ratio=20, lr_decay=0.5)
    assert [r.name for r in rates] == [g.name for g in reversed(unfrozen)]
    assert [r.lr for r in rates] == pytest.approx([5e-5, 2.5e-5, 1.25e-5])
    head = LinearHead(cnn.feature_dim, 3)
    groups = param_groups(head, unfrozen, rates, 1e-3, 0.01)
    opt = torch.optim.AdamW(groups)
    by_id = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert all(by_id[id(p)] == 1e-3 for p in head.parameters() if p.requires_grad)
    for g, r in zip(reversed(unfrozen), rates, strict=True):
        assert all(by_id[id(p)] == pytest.approx(r.lr) for p in g.params)
    # frozen parameters are not in the optimizer at all
    frozen = [p for p in cnn.parameters() if not p.requires_grad]
    assert frozen and not any(id(p) in by_id for p in frozen)
    # no weight decay on biases and norm weights
    assert all(g["weight_decay"] == 0.0 for g in opt.param_groups if g["params"][0].ndim <= 1)


def _batchnorms(cnn):
    groups = cnn.layer_groups()
    frozen = [m for g in groups[:-1] for m in g.modules if isinstance(m, torch.nn.BatchNorm2d)]
    top = [m for m in groups[-1].modules if isinstance(m, torch.nn.BatchNorm2d)]
    assert frozen and top
    return frozen, top


def test_batchnorm_keeps_pretrained_statistics_by_default(cnn):
    net = TransferNet(cnn, LinearHead(cnn.feature_dim, 2))
    unfreeze_top(cnn, 1)
    set_train_mode(net, cnn, 1)
    frozen_bn, top_bn = _batchnorms(cnn)
    before = [m.running_mean.clone() for m in frozen_bn + top_bn]
    net(torch.randn(4, 3, 64, 64) * 3 + 1).sum().backward()
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, frozen_bn + top_bn, strict=True))
    assert not any(m.training for m in frozen_bn + top_bn)
    # the unfrozen group's BatchNorm still learns its scale and shift; the frozen ones do not
    assert all(m.weight.grad is not None and m.bias.grad is not None for m in top_bn)
    assert all(m.weight.grad is None for m in frozen_bn)
    assert net.head.training and any(m.training for m in cnn.layer_groups()[-1].modules)


def test_batchnorm_update_recomputes_statistics_of_unfrozen_groups_only(cnn):
    net = TransferNet(cnn, LinearHead(cnn.feature_dim, 2))
    unfreeze_top(cnn, 1)
    set_train_mode(net, cnn, 1, bn_stats="update")
    frozen_bn, top_bn = _batchnorms(cnn)
    before = [m.running_mean.clone() for m in frozen_bn]
    before_top = [m.running_mean.clone() for m in top_bn]
    net(torch.randn(4, 3, 64, 64) * 3 + 1)
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, frozen_bn, strict=True))
    assert not all(torch.equal(b, m.running_mean) for b, m in zip(before_top, top_bn, strict=True))
    assert all(not m.training for m in frozen_bn)


def test_stage_schedules():
    assert stage_schedule(19, "gradual") == [5, 10, 19]
    assert stage_schedule(8, "gradual") == [2, 4, 8]
    assert stage_schedule(3, "gradual") == [1, 2, 3]
    assert stage_schedule(1, "gradual") == [1]
    assert stage_schedule(19, "full") == [19]
    assert stage_schedule(19, "gradual", unfreeze=3) == [3]
    assert stage_schedule(4, "gradual", unfreeze=10) == [4]
