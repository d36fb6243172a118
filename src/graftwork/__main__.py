"""``python -m graftwork``: the command line, in one process or in each of N.

``accelerate launch --num_processes N -m graftwork fit ...`` and ``torchrun --nproc_per_node N -m graftwork fit
...`` start this module once per process. Only ``fit`` knows how to share its work (see
:mod:`graftwork.distributed`); any other command launched that way is refused, since N copies of ``predict`` or
``export`` would print or write the same thing N times. Results meant for programs (``--json`` on stdout) come
from rank 0 alone; the other ranks' stdout is discarded (their console is quiet too, see
:class:`graftwork.console.Console`), but their errors still reach stderr.
"""

from __future__ import annotations

import os
import sys

from .cli.main import main
from .distributed import is_main_process

EXIT_USER_ERROR = 2
SHARED_COMMANDS = ("fit",)  # the commands that split their work across launched processes


def _launched_command(argv: list[str]) -> str | None:
    """The command of a run launched on several processes (``WORLD_SIZE`` > 1), or None in a single process."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    return next((a for a in argv if not a.startswith("-")), "")


def run(argv: list[str] | None = None) -> int:
    """The CLI, with the rules of a launched run (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    command = _launched_command(argv)
    if command is not None and command not in SHARED_COMMANDS and "-h" not in argv and "--help" not in argv:
        if is_main_process():
            sys.stderr.write(f"error: `graftwork {command}` does not run on several processes (WORLD_SIZE="
                             f"{os.environ['WORLD_SIZE']}); only `graftwork fit` shares its work across them.\n"
                             f"  hint: run `python -m graftwork {command} ...` as a single process.\n")
        return EXIT_USER_ERROR
    if command is not None and not is_main_process():
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (kept open until the process ends)
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
