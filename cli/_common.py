"""What both CLIs share: library errors become one line on stderr and exit code 2."""

from __future__ import annotations

import typer
from rich.console import Console
from typer.core import TyperGroup

from titans_ts.errors import TitansError, TitansWarning

console = Console()
err_console = Console(stderr=True)


def write_table_text(text: str) -> None:
    """Machine-readable output (CSV) goes to stdout whole: never wrapped, styled or highlighted by rich."""
    import sys

    sys.stdout.write(text)
    sys.stdout.flush()


_state = {"debug": False}


def set_debug(debug: bool) -> None:
    _state["debug"] = debug


class ErrorReportingGroup(TyperGroup):
    """A TitansError becomes `error: <message>` on stderr and exit code 2 (the traceback with --debug).

    --debug is taken anywhere on the command line (`titans-ts fit ... --debug` as well as before `fit`)."""

    def main(self, args=None, *rest, **kwargs):
        import sys

        args = list(sys.argv[1:] if args is None else args)
        if "--debug" in args:
            args = ["--debug", *(a for a in args if a != "--debug")]
        return super().main(args, *rest, **kwargs)

    def invoke(self, ctx):
        import warnings

        default_show = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            """The library's own warnings as one line, `warning: <message>`, without the source location."""
            if issubclass(category, TitansWarning) and not _state["debug"]:
                err_console.print(f"[bold yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
            else:
                default_show(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            if _state["debug"]:
                raise
            detail = f" ({exc})" if str(exc) else ""
            err_console.print(f"[bold red]interrupted[/]{detail}; nothing was saved.", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
        except TitansError as exc:
            if _state["debug"]:
                raise
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        finally:
            warnings.showwarning = default_show


def make_app(name: str, help: str) -> typer.Typer:
    app = typer.Typer(
        name=name,
        help=help,
        cls=ErrorReportingGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _options(
        debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    ) -> None:
        set_debug(debug)

    return app


def not_yet(command: str, reason: str) -> None:
    err_console.print(f"[bold red]error:[/] `{command}` is not available in this version yet ({reason}).")
    raise typer.Exit(2)
