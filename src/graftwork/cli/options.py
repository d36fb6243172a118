"""Command-line options generated from :class:`FitConfig`, so the CLI, the API and the saved config agree."""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, fields

from ..config import FitConfig


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(FitConfig)
    for f in fields(FitConfig):
        help_text = f.metadata.get("help", "")
        if hints[f.name] is bool:
            if f.default is True:
                parser.add_argument(_flag(f"no_{f.name}"), dest=f.name, action="store_false",
                                    help=f"do not {help_text}" if f.name == "cache" else f"{help_text}: turn off")
            else:
                parser.add_argument(_flag(f.name), dest=f.name, action="store_true", help=help_text)
            parser.set_defaults(**{f.name: f.default})
            continue
        kind = hints[f.name]
        if isinstance(kind, types.UnionType):  # "str | None"
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if kind is bool:  # "bool | None": --x / --no-x, unset means "let graftwork decide"
            group = parser.add_mutually_exclusive_group()
            group.add_argument(_flag(f.name), dest=f.name, action="store_const", const=True, help=help_text)
            group.add_argument(_flag(f"no_{f.name}"), dest=f.name, action="store_const", const=False,
                               help=f"turn {f.name.replace('_', ' ')} off")
            parser.set_defaults(**{f.name: f.default})
            continue
        default = None if f.default is MISSING else f.default
        metavar = f.name.upper() if kind is str else None
        parser.add_argument(_flag(f.name), dest=f.name, type=kind, default=default, metavar=metavar,
                            help=f"{help_text} (default: {default})" if default is not None else help_text)


def fit_config_from_args(args: argparse.Namespace) -> FitConfig:
    return FitConfig(**{f.name: getattr(args, f.name) for f in fields(FitConfig)})
