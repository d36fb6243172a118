"""``graftwork.pipeline``: where the CLI, the API and the tests find a classification fit.

The fit itself is the :mod:`graftwork.classify` package (its steps over one state, :mod:`graftwork.classify.fit`);
this module only keeps the names that were always imported from here.
"""

from __future__ import annotations

from .classify.fit import fit_steps, resume_fit, run_fit
from .classify.resume import RESUME_FILE
from .run.provenance import partial_dir

__all__ = ["run_fit", "resume_fit", "fit_steps", "partial_dir", "RESUME_FILE"]
