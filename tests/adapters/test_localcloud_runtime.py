"""Local Lambda workers: isolation, marshalling, faults and clean shutdown (no moto needed)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.provision import FunctionSpec, InvokeConfig
from localcloud.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "tests" / "fixtures" / "localcloud" / "functions"


def spec(handler: str, *, layers: list[Path] | None = None, name: str = "Fn") -> FunctionSpec:
    return FunctionSpec(
        logical_id=name,
        name=f"st-{name}-X",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:st-{name}-X",
        handler=handler,
        code_dir=CODE,
        layer_dirs=layers or [],
        environment={},
        timeout=10,
        memory_size=128,
        runtime="python3.12",
        invoke_config=InvokeConfig(),
    )


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    functions = {
        "WithLayer": spec("nolayer.handler", layers=[ROOT / "shared"], name="WithLayer"),
        "WithoutLayer": spec("nolayer.handler", name="WithoutLayer"),
        "Missing": spec("nolayer.nope", layers=[ROOT / "shared"], name="Missing"),
        "SideEffect": spec("nolayer.side_effect", layers=[ROOT / "shared"], name="SideEffect"),
    }
    local = Runtime(
        functions,
        logs_dir=tmp_path / "logs",
        crash_after=lambda function, event: function == "SideEffect" and event.get("crash"),
    )
    try:
        yield local
    finally:
        local.close()


def test_a_function_sees_only_its_code_and_layers(runtime: Runtime) -> None:
    # Given the product's layer package is installed in the venv (editable), as it is here
    # When a function whose template forgot the layer imports it
    result = runtime.invoke("WithoutLayer", "{}")
    # Then it fails at init, as it would in Lambda
    assert result.error_type == "Runtime.ImportModuleError"
    assert "No module named 'restoredrill'" in result.json()["errorMessage"]
    # And with the layer on its path the same code works; Decimals marshal as JSON numbers
    ok = runtime.invoke("WithLayer", "{}")
    assert ok.ok, ok.payload
    assert ok.json() == {"layer": "restoredrill", "amount": 12.5, "count": 3}


def test_a_missing_handler_is_lambdas_error(runtime: Runtime) -> None:
    result = runtime.invoke("Missing", "{}")
    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == "Runtime.HandlerNotFound"


def test_crash_after_fault_keeps_the_side_effect_and_loses_the_result(
    runtime: Runtime, tmp_path: Path
) -> None:
    # Given the fault: the SideEffect function dies right after its handler returns
    marker = tmp_path / "marker"
    # When it is invoked with crash=True
    result = runtime.invoke("SideEffect", f'{{"path": "{marker}", "crash": true}}')
    # Then the side effect happened, but the caller sees a runtime exit (so it would retry)
    assert marker.read_text() == "done\n"
    assert result.error_type == "Runtime.ExitError"
    # And without the flag it succeeds
    assert runtime.invoke("SideEffect", f'{{"path": "{marker}"}}').ok


def test_close_ends_every_worker(runtime: Runtime) -> None:
    # Given warm workers for two functions
    assert runtime.invoke("WithLayer", "{}").ok
    assert runtime.invoke("SideEffect", f'{{"path": "{os.devnull}"}}').ok
    pids = [
        worker.process.pid
        for pool in runtime._pools.values()
        for worker in [*pool.idle, *pool.busy]
    ]
    assert len(pids) == 2
    # When the runtime closes
    runtime.close()
    # Then no worker process is left
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # And later invokes fail cleanly instead of starting new workers
    assert runtime.invoke("WithLayer", "{}").error_type == "Runtime.Closed"
