"""The `restoredrill` command's registration: building every parser stays light (what
`restoredrill --help` and every command pay before doing anything), and the local cloud's
commands validate their fault names themselves, since only the [local] extra can list them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud.cloud import FAULTS
from restoredrill_cli.main import main

# Each costs tens to thousands of milliseconds to import; moto is absent from an operator's
# install. restoredrill.* (pydantic models) belongs to the commands that use it.
HEAVY_MODULES = (
    "boto3",
    "botocore",
    "moto",
    "localcloud",
    "pydantic",
    "rich",
    "jinja2",
    "aws_lambda_powertools",
    "pg8000",
    "yaml",
    "restoredrill",
)


def modules_after(code: str) -> list[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return list(json.loads(result.stdout))


def heavy(modules: list[str]) -> list[str]:
    return sorted(
        {name for name in modules for root in HEAVY_MODULES if name.split(".")[0] == root}
    )


def test_building_every_commands_parser_imports_no_heavy_module() -> None:
    # When every command's parser is built and the top-level help formatted (`--help`)
    loaded = modules_after(
        "from restoredrill_cli.main import build_parser\nbuild_parser().format_help()"
    )
    # Then none of the heavy modules was imported
    assert heavy(loaded) == []


def test_parsing_a_command_imports_nothing_of_its_implementation() -> None:
    # When `status --local` is parsed (its handler not yet run)
    loaded = modules_after(
        "from restoredrill_cli.main import build_parser\n"
        "build_parser().parse_args(['status', '--local'])"
    )
    # Then neither the command's implementation nor what it needs was imported
    assert "restoredrill_cli.operate" not in loaded
    assert heavy(loaded) == []


def test_the_check_suite_and_the_checkers_request_load_no_yaml_parser() -> None:
    # When the check suite and the checker's request (which carries a policy) are imported and
    # a default policy is built, as `restoredrill check` without --policy and the checker do
    loaded = modules_after(
        "import restoredrill.checksuite\n"
        "from restoredrill.ports.messages import CheckerRequest\n"
        "from restoredrill.ports.policy import DrillPolicy\n"
        "DrillPolicy()"
    )
    # Then PyYAML is not loaded: only reading a policy file needs it
    assert "restoredrill.ports.policy" in loaded
    assert [name for name in loaded if name.split(".")[0] == "yaml"] == []


def test_reading_a_policy_file_still_reports_its_yaml_errors_by_line(tmp_path: Path) -> None:
    # Given a policy file with a YAML syntax error on its third line
    from restoredrill.ports.policy import PolicyError, load_policy_file

    policy = tmp_path / "policy.yaml"
    policy.write_text("defaults:\n  level: 3\n  include_databases: [app\n")
    # When it is read
    with pytest.raises(PolicyError) as raised:
        load_policy_file(policy)
    # Then the error names the file and a line (the parser is loaded when needed)
    [issue] = raised.value.issues
    assert issue.source == str(policy)
    assert issue.line is not None and issue.line >= 3


def test_demo_help_lists_every_fault_of_the_local_cloud(capsys: pytest.CaptureFixture[str]) -> None:
    # When `demo --help` is asked for (the [local] extra is installed here)
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--help"])
    # Then it lists every fault the local cloud can inject
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert "faults (--fault NAME):" in shown
    assert [name for name in FAULTS if f"\n  {name}\n" not in shown] == []


@pytest.mark.parametrize("command", ["demo", "local"])
def test_an_unknown_fault_is_refused_before_anything_starts(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the local cloud is asked for a fault it does not have
    status = main([command, "--fault", "no-such-fault"])
    # Then the command says so in one line with exit status 2, and starts nothing
    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("restoredrill: error: unknown fault 'no-such-fault' (choose")
    assert "lose-rds-events" in captured.err


@pytest.mark.parametrize(
    "command",
    [
        ["run", "orders-db", "--local", "no-such-state.json"],
        ["status", "--local", "no-such-state.json"],
        ["history", "orders-db", "--local", "no-such-state.json"],
        ["verify-chain", "orders-db", "--local", "no-such-state.json"],
        ["report", "--local", "no-such-state.json"],
        ["check", "--dsn", "mysql://u@h/db"],
        ["policy", "validate", "no-such-policy.yaml"],
        ["demo", "--fault", "no-such-fault"],
        ["local", "--fault", "no-such-fault"],
    ],
    ids=lambda command: command[0],
)
def test_every_command_collects_garbage_again_once_loaded(
    command: list[str], tmp_path: Path
) -> None:
    # Given the installed console script, which starts with the garbage collector off
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('collecting:', gc.isenabled()))\n"
        "from restoredrill_cli.main import console_script\n"
        f"sys.argv[1:] = {command!r}\n"
        "sys.exit(console_script())\n"
    )
    # When a command runs (each of these ends early, on its bad input)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    # Then it had turned collection back on (a long `run --wait` or `local` must collect)
    assert result.returncode in (1, 2), result.stderr
    assert result.stdout.splitlines()[-1] == "collecting: True"
