"""The aiotrace entry point: exit codes and one-line errors."""
import sys
import textwrap

import pytest

from tracer import cli


@pytest.fixture
def extra_commands(tmp_path, monkeypatch):
    (tmp_path / "cmdmod_for_test.py").write_text(textwrap.dedent("""
        import click
        from tracer.errors import SpecError
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
