"""The aiotrace entry point: exit codes and one-line errors."""
import sys
import textwrap

import pytest

from tracer import cli


@pytest.fixture
def extra_commands(tmp_path, monkeypatch):
    (tmp_path / "cmdmod_for_test.py").write_text(textwrap.dedent("""
        import click
        from tracer.base.errors import SpecError
        @click.command()
        @click.pass_context
        def exits_seven(ctx):
            ctx.exit(7)
        @click.command()
        def bad_input():
            raise SpecError("depth must be at least 1, got 0")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "exits-seven", "cmdmod_for_test:exits_seven")
    monkeypatch.setitem(cli.COMMANDS, "bad-input", "cmdmod_for_test:bad_input")
    yield
    sys.modules.pop("cmdmod_for_test", None)


def test_command_exit_code_reaches_the_shell(extra_commands):
    assert cli.main(["exits-seven"]) == 7


def test_bad_input_is_one_line_and_exit_2(extra_commands, capsys):
    assert cli.main(["bad-input"]) == 2
    err = capsys.readouterr().err
    assert err == "aiotrace: error: depth must be at least 1, got 0\n"


def test_unknown_command_is_an_error(capsys):
    assert cli.main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_every_registered_command_imports():
    for name in cli.COMMANDS:
        cmd = cli.cli.get_command(None, name)
        assert "unavailable" not in (cmd.help or ""), name


def test_a_command_whose_module_fails_to_import_says_why(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "broken", "no_such_module_for_aiotrace:cmd")
    assert cli.main(["broken"]) == 1
    err = capsys.readouterr().err
    assert "command 'broken' is unavailable" in err and "no_such_module_for_aiotrace" in err


def _params(command_name: str) -> dict:
    import importlib
    module, attr = cli.COMMANDS[command_name].split(":")
    return {p.name: p for p in getattr(importlib.import_module(module), attr).params}


@pytest.mark.parametrize("command_name", ["run", "capture", "sweep", "simulate"])
def test_every_command_that_builds_a_spec_takes_the_spec_options_with_one_set_of_defaults(command_name):
    """The spec's options are declared once (tracer.base.spec.SPEC_OPTIONS): sweep takes every one
    but those it sweeps as lists, with the same defaults, types and help as `run`."""
    from tracer.base.spec import SPEC_OPTIONS
    from tracer.capture.cli import SWEPT

    params, run = _params(command_name), _params("run")
    skipped = set(SWEPT) if command_name == "sweep" else set()
    if command_name == "simulate":
        skipped = {n for n in SPEC_OPTIONS if n not in params}  # FreeBSD modes only: it may narrow --mode
        assert skipped <= {"mode"}, skipped
    for name in SPEC_OPTIONS:
        if name in skipped:
            assert name not in params or command_name == "simulate"
            continue
        p, r = params[name], run[name]
        assert (p.opts, p.secondary_opts, p.show_default, type(p.type)) == \
            (r.opts, r.secondary_opts, r.show_default, type(r.type)), name
        assert p.help == r.help or name == "mode", name  # capture says --mode is for the workload only
        if not callable(r.default):
            assert p.default == r.default, name
    if command_name == "sweep":
        assert {"modes", "depths", "batches", "reap_batches", "repeat"} <= set(params)
