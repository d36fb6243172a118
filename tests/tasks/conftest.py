"""NER's tag layer trains for a dozen epochs here (its 100-epoch budget is for real data), as in tests/ner."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="package")
def _short_head_stage():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("graftwork.ner.train.HEAD_EPOCHS", 12, raising=False)
        yield
