"""The ``ltv`` command line: thin front end over the library (typer + rich).

Exit codes: 0 success, 2 bad input (``InputError``), 1 any other failure. Errors go to
stderr without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import sys

import click
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
        code = app(args=args, prog_name="ltv", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        code = 1
    except click.ClickException as exc:  # usage errors: unknown option, missing argument
        exc.show(file=sys.stderr)
        code = 2
    except InputError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        code = 2
    except (LtvError, OSError, RuntimeError, ValueError) as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
