"""The report's HTML comes from jinja2 templates (package files under ``report/templates/``), autoescaped.

Escaping does not rely on discipline: every ``{{ value }}`` in a template goes through :func:`shown`, the
environment's ``finalize``, which formats it (:func:`~.values.fmt`), writes control characters as visible
escapes (``\\x1b``, as in the terminal) and escapes ``<``, ``>``, ``&`` and both quotes, so a value is safe in
elements and attributes alike. The only values that go in as they are carry ``__html__`` (:class:`Markup`):
the output of our own templates and macros. No Python code in the report builds markup from strings.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from ..console import visible
from .values import fmt, short

Html = Markup  # trusted markup: what our templates rendered


def esc(x: Any) -> str:
    """``x`` as HTML text: ``<``, ``>``, ``&`` and both quotes escaped, control characters made visible."""
    return html.escape(visible(x), quote=True)


def shown(x: Any) -> Any:
    """How a template shows a value: markup from our templates as it is; anything else formatted and escaped."""
    if hasattr(x, "__html__"):
        return x
    return Markup(esc(fmt(x)))


@cache
def environment() -> jinja2.Environment:
    """The one jinja2 environment of the report: autoescaping on, undefined names are errors."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("graftwork.report", "templates"), autoescape=True,
                             finalize=shown, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["short"] = short
    return env


def render(template: str, **context: Any) -> Markup:
    """``templates/<template>`` rendered with ``context``."""
    return Markup(environment().get_template(template).render(**context))


def macro(name: str, *args: Any) -> Markup:
    """The macro ``name`` of ``templates/macros.html.j2`` called with ``args`` (for the little markup Python
    code needs, such as a note)."""
    return Markup(getattr(environment().get_template("macros.html.j2").module, name)(*args))


@dataclass(frozen=True)
class Chart:
    """A chart for the ``figure`` macro: a PNG ``data:`` URI, or a note saying why there is none."""

    uri: str | None = None
    alt: str = ""
    caption: str = ""
    note: str = ""


def chart(name: str, *args: Any, alt: str, caption: str = "") -> Chart | None:
    """The chart ``plots.<name>(*args)``; None when it has nothing to draw."""
    try:
        from . import plots
    except ImportError:  # the report still renders, without charts, where matplotlib is not installed
        return Chart(note="Charts need matplotlib, which is not installed.")
    try:
        uri = getattr(plots, name)(*args)
    except Exception as e:  # a chart must never cost the rest of the report
        return Chart(note=f"This chart could not be drawn ({type(e).__name__}: {e}).")
    return Chart(uri=uri, alt=alt, caption=caption) if uri is not None else None
