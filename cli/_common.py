"""What both CLIs share: library errors (and the file system's) become one line on stderr and exit code 2."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
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


# Settings whose CLI spelling is another option, not `--name value`.
SPELLED_OTHERWISE = {"pass pretrained=False": "pass --scratch"}
OPTION_OF = {"checkpoint_minutes": "checkpoint_every"}  # a parameter whose option has another name


def as_options(message: str, command) -> str:
    """A settings error in the words the user typed: `online_blend=2.0` becomes `--online-blend 2.0` and
    `mode='history'` `--mode history` wherever the command has that option (the settings check is shared with
    the Python API, which names parameters)."""
    import re

    if command is None:
        return message
    for python, option in SPELLED_OTHERWISE.items():
        message = message.replace(python, option)
    parts = message.split("; ")  # the settings check joins its problems so; a part that speaks CLI stays as is
    if len(parts) > 1:
        return "; ".join(as_options(part, command) for part in parts)
    if "CLI" in message:
        return message
    flags = {}
    for param in command.params:
        long = [opt for opt in param.opts if opt.startswith("--")]
        if long and param.name:
            flags[param.name] = (long[0], getattr(param, "is_flag", False), param.secondary_opts)

    def rewrite(match: re.Match) -> str:
        name, value = OPTION_OF.get(match.group(1), match.group(1)), match.group(2).strip("'\"")
        if name not in flags or value.startswith(("[", "{")):  # a Python list or dict stays as the API spells it
            return match.group(0)
        flag, is_flag, negative = flags[name]
        if value == "None":  # the option's default: leaving it out
            return f"without {flag}"
        if not is_flag:
            return f"{flag} {value}"
        if value == "True":
            return flag
        return negative[0] if value == "False" and negative else match.group(0)

    # a name at the start, after a space or an opening bracket: not inside a path (runs/lr=0.01/model)
    return re.sub(r"(?<![^\s(])([a-z][a-z0-9_]*)=('[^']*'|\"[^\"]*\"|[^\s,;()]+)", rewrite, message)


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
                err_console.print(f"[bold yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
            else:
                default_show(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            if _state["debug"]:
                raise
            # a run that says what it kept (require_finished: its checkpoint) is not told that nothing was saved
            said = f": {escape(str(exc))}" if str(exc) else "; nothing was saved."
            err_console.print(f"[bold red]interrupted[/]{said}", highlight=False, soft_wrap=True)
            raise typer.Exit(interrupted_exit_code()) from None
        except TitansError as exc:
            if _state["debug"]:
                raise
            message = str(exc)
            if ctx.invoked_subcommand:  # the shared checks name Python parameters (fill='x'): say the options
                message = as_options(message, self.get_command(ctx, ctx.invoked_subcommand))
            err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as exc:  # the file system refused a path (unwritable folder, name too long, disk full)
            if _state["debug"] or isinstance(exc, BrokenPipeError):  # `| head` closed stdout: click's own exit
                raise
            err_console.print(f"[bold red]error:[/] {escape(file_system_error(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        finally:
            warnings.showwarning = default_show


def file_system_error(exc: OSError) -> str:
    """An OSError in words: the path and what the system said, and for a path what to check."""
    said = exc.strerror or str(exc)
    if not exc.filename:
        return f"{said} (run again with --debug for where it happened)."
    return f"{exc.filename}: {said}. Check the path (its folder exists and can be written; names of at most 255 bytes)."


def exit_if_interrupted(*histories: dict) -> None:
    """After a run's results are printed and saved: the shell's code for Ctrl-C (130) or SIGTERM (143) if any
    part of it was interrupted, so that a script can tell it from a finished run."""
    if any(history.get("stop_reason") == "interrupted" for history in histories):
        raise typer.Exit(interrupted_exit_code())


def interrupted_exit_code() -> int:
    """130 for Ctrl-C, 143 when SIGTERM stopped a training (a scheduler's stop: a requeue script tells them
    apart as it would for any process); the training loop is not imported for this (it loads Lightning)."""
    import sys

    loop = sys.modules.get("titans_ts.training.loop")
    return 143 if loop is not None and loop.stopped_by_sigterm() else 130


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
