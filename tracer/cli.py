"""The `aiotrace` command. Each subcommand lives in its own module and is imported on use,
so `aiotrace run` does not pay for pandas or nbconvert."""
from __future__ import annotations

import importlib
import sys

import click

from tracer.base.errors import AiotraceError, describe_oserror

# name -> "module:attribute" of a click.Command
COMMANDS = {
    "run": "tracer.commands.run:run",
    "modes": "tracer.commands.run:modes",
    "capture": "tracer.capture.cli:capture",
    "doctor": "tracer.capture.cli:doctor",
    "freebsd-kit": "tracer.capture.cli:freebsd_kit",
    "parse": "tracer.parse.cli:parse",
    "sweep": "tracer.capture.cli:sweep",
    "report": "tracer.view.cli:report",
    "compare": "tracer.view.cli:compare",
    "export": "tracer.view.cli:export",
    "summary": "tracer.view.cli:summary",
    "demo": "tracer.commands.demo:demo",
    "simulate": "tracer.commands.simulate:simulate",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:  # e.g. the cffi extension was not built
            why = str(exc)  # `exc` is unbound once the except block ends

            @click.command(name=name, help=f"(unavailable: {why})")
            def unavailable():
                raise click.ClickException(f"command '{name}' is unavailable: {why}")
            return unavailable


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aiotrace")
def cli():
    """aiotrace: what an asynchronous I/O completion API costs, measured."""


def _one_line(message: str) -> str:
    """Messages (click's choice lists, C strerror text) folded onto one line."""
    return " ".join(message.split())


def main(argv: list[str] | None = None) -> int:
    try:
        # In non-standalone mode click returns ctx.exit(n)'s code instead of exiting.
        rv = cli.main(args=argv, prog_name="aiotrace", standalone_mode=False)
    except AiotraceError as exc:
        click.echo(f"aiotrace: error: {_one_line(str(exc))}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aiotrace: interrupted", err=True)
        return 130
    except click.UsageError as exc:  # click's own usage errors, in the same one-line form
        where = exc.ctx.command_path if exc.ctx is not None else "aiotrace"
        click.echo(f"aiotrace: error: {where}: {_one_line(exc.format_message())} (see '{where} --help')", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"aiotrace: error: {_one_line(exc.format_message())}", err=True)
        return exc.exit_code
    except OSError as exc:  # an output or input the OS refused, where no layer named it better
        click.echo(f"aiotrace: error: {describe_oserror(exc)}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
