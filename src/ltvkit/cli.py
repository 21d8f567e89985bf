"""The ``ltv`` command line: thin front end over the library (typer + rich).

Exit codes: 0 success, 2 bad input (``InputError``), 1 any other failure. Errors go to
stderr without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from ltvkit.errors import InputError, LtvError

app = typer.Typer(
    name="ltv",
    help="Customer lifetime value from a transaction log or from a few business figures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _state["debug"] = debug


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ltv`` console script."""
    args = sys.argv[1:] if argv is None else argv
    _state["debug"] = "--debug" in args
    try:
        app(args=args, prog_name="ltv")  # standalone mode: usage errors exit 2 by themselves
    except InputError as exc:
        _fail(exc, 2)
    except (LtvError, OSError, RuntimeError, ValueError) as exc:
        _fail(exc, 1)


def _fail(exc: Exception, code: int) -> None:
    if _state["debug"]:
        raise exc
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
