"""The local Lambda service: the template's functions, run the way `sam local invoke` runs them.

Function code here is small throwaway ``app.py`` files under the test's temporary directory; each
invocation is a real process, so what is checked is what a handler really sees and what the
service really reports: results, Lambda's error shapes, the timeout, the on-failure record.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cronfleet.invoker import InvokeError
from cronfleet_tools.local.functions import InvalidEnvVars, load_env_vars, load_functions
from cronfleet_tools.local.lambda_process import Invocation, LocalLambda
from cronfleet_tools.template import load_template

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]

# The repository's template resolves table references to these local names in the tests below.
TABLES = {"TasksTable": "local-tasks", "ExecutionsTable": "local-executions"}


def write_function(root: Path, name: str, code: str) -> Path:
    """A function's code directory holding one ``app.py``."""
    directory = root / name
    directory.mkdir()
    (directory / "app.py").write_text(textwrap.dedent(code))
    return directory


def function_resource(
    code_dir: Path,
    *,
    timeout: int | None = None,
    variables: dict[str, Any] | None = None,
    on_failure: str | None = None,
    max_retries: int | None = None,
) -> dict[str, Any]:
    properties: dict[str, Any] = {"CodeUri": code_dir.name, "Handler": "app.handler"}
    if timeout is not None:
        properties["Timeout"] = timeout
    if variables:
        properties["Environment"] = {"Variables": variables}
    if on_failure is not None or max_retries is not None:
        config: dict[str, Any] = {}
        if max_retries is not None:
            config["MaximumRetryAttempts"] = max_retries
        if on_failure is not None:
            config["DestinationConfig"] = {
                "OnFailure": {"Type": "Lambda", "Destination": {"Fn::GetAtt": [on_failure, "Arn"]}}
            }
        properties["EventInvokeConfig"] = config
    return {"Type": "AWS::Serverless::Function", "Properties": properties}


@pytest.fixture
def local_lambda(tmp_path: Path) -> Iterator[Callable[..., LocalLambda]]:
    """Build a LocalLambda over a template's functions; every one is shut down afterwards."""
    started: list[LocalLambda] = []

    def build(template: dict[str, Any], **options: Any) -> LocalLambda:
        functions = load_functions(template, tmp_path, resolve={})
        service = LocalLambda(functions, options.pop("runtime_environment", {}), **options)
        started.append(service)
        return service

    yield lambda template, **options: build(template, log_dir=tmp_path / "logs", **options)
    for service in started:
        service.shutdown(kill=True)


def one_function(tmp_path: Path, code: str, **resource: Any) -> dict[str, Any]:
    """A template with a single function, ``Fn``."""
    return {
        "Resources": {"Fn": function_resource(write_function(tmp_path, "fn", code), **resource)}
    }


# --- load_functions: the template's functions as `sam local invoke` sees them ----------------


def test_repository_functions_get_globals_own_variables_and_resolved_references() -> None:
    # given the repository's template, with the tables resolved to local names
    template = load_template(REPO_ROOT / "template.yaml")

    # when its functions are loaded
    functions = load_functions(template, REPO_ROOT, resolve=TABLES)

    # then each one has the Globals' variables with references resolved as sam local does
    task = functions["ExampleTaskFunction"]
    assert task.environment == {
        "POWERTOOLS_SERVICE_NAME": "cronfleet",
        "POWERTOOLS_METRICS_NAMESPACE": "Cronfleet",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        "POWERTOOLS_LOG_LEVEL": "INFO",  # !Ref LogLevel: the parameter's default
        "TASKS_TABLE_NAME": "local-tasks",  # !Ref TasksTable, through `resolve`
        "EXECUTIONS_TABLE_NAME": "local-executions",
        "HISTORY_RETENTION_DAYS": "90",  # a Number parameter's default, as text
        "DISPATCH_SHARDS": "8",
        "CRONFLEET_PER_TASK_METRICS": "false",
        "CRONFLEET_TRACE_SAMPLE_RATE": "0.05",
        "ALERT_TOPIC_ARN": "",  # !Ref to a resource with no local counterpart
        # !If [HasDashboard, !Sub ...]: a condition is decided only when the stack deploys,
        # and the stack has no dashboard by default, so alerts link to none
        "DASHBOARD_NAME": "",
    }
    # a function's own variables come on top of the Globals' (here a !Ref to another function,
    # which nothing resolves)
    dispatcher = functions["DispatcherFunction"]
    assert dispatcher.environment["HTTP_FUNCTION_NAME"] == ""
    assert dispatcher.environment["TASKS_TABLE_NAME"] == "local-tasks"
    # Timeout and MemorySize: the function's own, else the Globals'
    assert (dispatcher.timeout_seconds, dispatcher.memory_mb) == (55, 512)
    assert (task.timeout_seconds, task.memory_mb) == (60, 256)
    assert functions["HttpTaskFunction"].timeout_seconds == 900
    # the handler and code directory the template names
    assert task.handler == "app.handler"
    assert task.code_dir == REPO_ROOT / "functions" / "example_task"
    assert (task.code_dir / f"{task.module}.py").is_file()
    # the on-failure destination and retries of asynchronous invokes (EventInvokeConfig)
    assert (task.on_failure, task.max_retries) == ("RecorderFunction", 0)
    assert functions["HttpTaskFunction"].on_failure == "RecorderFunction"
    # a function without EventInvokeConfig has no destination and Lambda's 2 retries
    recorder = functions["RecorderFunction"]
    assert (recorder.on_failure, recorder.max_retries) == (None, 2)
    # a parameter's default resolves; a !Sub naming functions that only exist once deployed
    # is empty, as SAM CLI leaves it
    api = functions["ApiFunction"]
    assert api.environment["API_TENANT_QUOTA"] == "1000"
    assert api.environment["API_TASK_FUNCTIONS"] == ""
    assert api.timeout_seconds == 29
    assert set(functions) == {
        "RegistryFunction",
        "DispatcherFunction",
        "DispatchWorkerFunction",
        "RecorderFunction",
        "ExampleTaskFunction",
        "HttpTaskFunction",
        "WeeklyDigestFunction",
        "ApiFunction",
        "FleetWidgetFunction",
    }


def test_a_function_without_timeout_or_memory_gets_lambdas_defaults(tmp_path: Path) -> None:
    # given a template with neither a Globals section nor the function's own settings
    template = one_function(tmp_path, "def handler(event, context):\n    return None\n")

    # when it is loaded
    function = load_functions(template, tmp_path, resolve={})["Fn"]

    # then it gets Lambda's documented defaults: 3 seconds, 128 MB, no variables
    assert (function.timeout_seconds, function.memory_mb) == (3, 128)
    assert function.environment == {}
    assert (function.on_failure, function.max_retries) == (None, 2)


def test_env_vars_override_only_the_variables_the_template_declares(tmp_path: Path) -> None:
    # given the repository's template and an --env-vars file: Parameters for every function,
    # then a section of the dispatcher's own
    env_file = tmp_path / "env.json"
    env_file.write_text(
        json.dumps(
            {
                "Parameters": {
                    "TASKS_TABLE_NAME": "from-parameters",
                    "HISTORY_RETENTION_DAYS": 7,  # a number is taken as its text
                    "NOT_DECLARED_ANYWHERE": "ignored",
                },
                "DispatcherFunction": {
                    "TASKS_TABLE_NAME": "dispatcher-own",
                    "HTTP_FUNCTION_NAME": "HttpTaskFunction",
                    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": True,
                    "ALSO_NOT_DECLARED": "ignored",
                },
            }
        )
    )
    template = load_template(REPO_ROOT / "template.yaml")

    # when the functions are loaded with it
    functions = load_functions(
        template, REPO_ROOT, resolve=TABLES, env_vars=load_env_vars(env_file)
    )

    # then Parameters apply to every function, and a function's own section wins over them
    task, dispatcher = functions["ExampleTaskFunction"], functions["DispatcherFunction"]
    assert task.environment["TASKS_TABLE_NAME"] == "from-parameters"
    assert task.environment["HISTORY_RETENTION_DAYS"] == "7"
    assert dispatcher.environment["TASKS_TABLE_NAME"] == "dispatcher-own"
    assert dispatcher.environment["HTTP_FUNCTION_NAME"] == "HttpTaskFunction"
    assert dispatcher.environment["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "true"
    # a section only reaches its own function
    assert task.environment["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert "HTTP_FUNCTION_NAME" not in task.environment
    # and, as with `sam local invoke`, nothing the template does not declare is added
    for function in functions.values():
        assert "NOT_DECLARED_ANYWHERE" not in function.environment
        assert "ALSO_NOT_DECLARED" not in function.environment


def test_the_repository_env_json_applies_to_the_declared_variables_only() -> None:
    # given the env.json `sam local invoke --env-vars` uses in this repository
    env_vars = load_env_vars(REPO_ROOT / "env.json")

    # when the template's functions are loaded with it
    functions = load_functions(
        load_template(REPO_ROOT / "template.yaml"), REPO_ROOT, resolve=TABLES, env_vars=env_vars
    )

    # then its table names win, and its variables that no function declares are left out
    task = functions["ExampleTaskFunction"]
    assert task.environment["TASKS_TABLE_NAME"] == "cronfleet-local-TasksTable"
    assert task.environment["EXECUTIONS_TABLE_NAME"] == "cronfleet-local-ExecutionsTable"
    assert "CRONFLEET_TASK_ID" not in task.environment
    assert "AWS_ENDPOINT_URL_DYNAMODB" not in task.environment
    assert functions["DispatcherFunction"].environment["HTTP_FUNCTION_NAME"] == ""


def test_no_env_vars_file_means_no_overrides() -> None:
    assert load_env_vars(None) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{\n  "Parameters": {\n    "A" "1"\n  }\n}\n',
            "not JSON (Expecting ':' delimiter at line 3, column 9)",
        ),
        ('["Parameters"]', "must be an object of sections, one per function"),
        ('{"Parameters": ["A=1"]}', "Parameters: must be an object of variables"),
        ('{"Fn": {"CONFIG": {"nested": 1}}}', "Fn.CONFIG: must be a string, not JSON"),
        ('{"Fn": {"LIST": [1, 2]}}', "Fn.LIST: must be a string, not JSON"),
    ],
)
def test_a_bad_env_vars_file_is_refused_with_where_and_why(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "env.json"
    path.write_text(content)

    with pytest.raises(InvalidEnvVars) as refused:
        load_env_vars(path)

    assert str(refused.value).startswith(f"{path}: ")
    assert message in str(refused.value)


def test_a_missing_env_vars_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "env.json"

    with pytest.raises(InvalidEnvVars) as refused:
        load_env_vars(path)

    assert str(refused.value) == f"{path}: no such file"


# --- run(): one synchronous invocation, one process ------------------------------------------


def test_a_handlers_result_comes_back_with_the_invocations_log(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    template = one_function(
        tmp_path,
        """
        def handler(event, context):
            print("doubling", event["n"])
            return {"doubled": event["n"] * 2}
        """,
    )
    seen: list[Invocation] = []
    service = local_lambda(template, on_invocation=seen.append)

    invocation = service.run("Fn", {"n": 21})

    assert not invocation.failed
    assert invocation.result == {"doubled": 42}
    assert (invocation.function, invocation.event) == ("Fn", {"n": 21})
    assert seen == [invocation]
    assert invocation.log_path is not None
    log = invocation.log_path.read_text().splitlines()
    assert log[0] == f"START RequestId: {invocation.request_id} Version: $LATEST"
    assert "doubling 21" in log
    assert log[-1].startswith(f"END RequestId: {invocation.request_id} ")


def test_an_unhandled_exception_is_reported_by_its_class_and_message(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    template = one_function(
        tmp_path,
        """
        def handler(event, context):
            raise ValueError("n must be positive, got -1")
        """,
    )

    invocation = local_lambda(template).run("Fn", {"n": -1})

    assert invocation.failed
    assert invocation.error_type == "ValueError"
    assert invocation.error_message == "n must be positive, got -1"
    assert invocation.result is None


def test_a_run_past_its_timeout_is_stopped_and_reported_as_lambda_does(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    # given a handler that writes down its process id, then hangs
    pid_file = tmp_path / "pid"
    template = one_function(
        tmp_path,
        """
        import os, time

        def handler(event, context):
            with open(os.environ["PID_FILE"], "w") as out:
                out.write(str(os.getpid()))
            time.sleep(120)
        """,
        timeout=1,
        variables={"PID_FILE": str(pid_file)},
    )

    # when it runs with a 1 second timeout
    invocation = local_lambda(template).run("Fn", {})

    # then the run is reported as Lambda reports a timeout
    assert invocation.timed_out
    assert invocation.error_type == "Sandbox.Timedout"
    assert invocation.error_message is not None
    assert invocation.error_message.endswith("Task timed out after 1.00 seconds")
    # and the process that ran it is gone
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_process_that_exits_is_reported_as_a_runtime_exit_error(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    template = one_function(
        tmp_path,
        """
        import os

        def handler(event, context):
            os._exit(3)
        """,
    )

    invocation = local_lambda(template).run("Fn", {})

    assert invocation.error_type == "Runtime.ExitError"
    assert invocation.error_message == (
        f"RequestId: {invocation.request_id} Error: Runtime exited with error: exit status 3"
    )


@pytest.mark.parametrize(
    ("code", "error_type", "message"),
    [
        (
            "import cronfleet_no_such_module\n",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'cronfleet_no_such_module'",
        ),
        (
            "def handler(event, context:\n    return 1\n",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'app': ",
        ),
        (
            "def main(event, context):\n    return 1\n",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'app'",
        ),
        ("import os\n\nTABLE = os.environ['NOT_SET_ANYWHERE']\n", "KeyError", "NOT_SET_ANYWHERE"),
    ],
    ids=["import-error", "syntax-error", "no-handler", "error-at-import"],
)
def test_a_module_that_cannot_be_imported_is_an_init_error(
    tmp_path: Path,
    local_lambda: Callable[..., LocalLambda],
    code: str,
    error_type: str,
    message: str,
) -> None:
    # as Lambda's Python runtime reports each of them
    invocation = local_lambda(one_function(tmp_path, code)).run("Fn", {})

    assert invocation.error_type == error_type
    assert invocation.error_message is not None
    assert message in invocation.error_message


def test_the_handler_sees_a_lambda_environment_and_context(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a function with variables of its own and from Globals, and a variable set only in
    # the environment of the process that runs the service
    monkeypatch.setenv("CRONFLEET_HOST_ONLY", "must not leak into a function")
    code_dir = write_function(
        tmp_path,
        "fn",
        """
        import os

        NAMES = [
            "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_SAM_LOCAL",
            "AWS_REGION", "SHARED", "OWN", "ENDPOINT", "CRONFLEET_HOST_ONLY",
        ]

        def handler(event, context):
            return {
                "environment": {name: os.environ.get(name) for name in NAMES},
                "request_id": context.aws_request_id,
                "function_name": context.function_name,
                "memory": context.memory_limit_in_mb,
                "remaining_ms": context.get_remaining_time_in_millis(),
                "cwd": os.getcwd(),
            }
        """,
    )
    template = {
        "Globals": {
            "Function": {
                "Timeout": 7,
                "MemorySize": 512,
                "Environment": {"Variables": {"SHARED": "from-globals", "OWN": "globals"}},
            }
        },
        "Resources": {
            "Reporter": function_resource(
                code_dir, variables={"OWN": "from-the-function", "ENDPOINT": "from-the-template"}
            )
        },
    }
    service = local_lambda(
        template, runtime_environment={"ENDPOINT": "http://127.0.0.1:8000"}, region="eu-west-1"
    )

    # when it runs
    invocation = service.run("Reporter", {})

    # then it sees what Lambda (and sam local) would give it, and nothing of the host's
    assert not invocation.failed, invocation.error_message
    seen = invocation.result
    assert seen["environment"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "Reporter",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_SAM_LOCAL": "true",
        "AWS_REGION": "eu-west-1",
        "SHARED": "from-globals",
        "OWN": "from-the-function",
        "ENDPOINT": "http://127.0.0.1:8000",  # the service's endpoints win, as for tables
        "CRONFLEET_HOST_ONLY": None,
    }
    assert seen["request_id"] == invocation.request_id
    assert (seen["function_name"], seen["memory"]) == ("Reporter", 512)
    assert 0 < seen["remaining_ms"] <= 7 * 1000
    assert Path(seen["cwd"]) == code_dir.resolve()  # the code directory, as /var/task


def test_a_simulated_run_reads_the_clock_of_the_replay(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    # given a replay at 01:00 UTC on the night the clocks change in Europe
    replay_time = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    template = one_function(
        tmp_path,
        """
        from cronfleet import clock

        def handler(event, context):
            return clock.now().isoformat()
        """,
    )
    service = local_lambda(template, clock=lambda: replay_time, simulated=True)

    # when a function reads cronfleet's clock
    invocation = service.run("Fn", {})

    # then it gets the replay's time, running on from where the invocation began
    assert not invocation.failed, invocation.error_message
    seen = datetime.fromisoformat(invocation.result)
    assert replay_time <= seen < replay_time + timedelta(minutes=1)
    assert invocation.started_at == replay_time


def test_a_run_that_is_not_simulated_reads_the_real_clock(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    template = one_function(
        tmp_path,
        """
        from cronfleet import clock

        def handler(event, context):
            return clock.now().isoformat()
        """,
    )
    service = local_lambda(template, clock=lambda: datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
    before = datetime.now(UTC)

    invocation = service.run("Fn", {})

    assert before <= datetime.fromisoformat(invocation.result) <= datetime.now(UTC)


# --- invoke(): InvocationType=Event, with the on-failure destination -------------------------


def destination_template(tmp_path: Path, body: str, max_retries: int) -> dict[str, Any]:
    """``Task`` counts its runs in runs.log, then runs ``body``; it sends failures to
    ``Destination``, which writes down each record it receives."""
    head = textwrap.dedent(
        """
        import os

        def handler(event, context):
            with open(os.environ["RUNS_LOG"], "a") as log:
                log.write(context.aws_request_id + "\\n")
        """
    )
    task_dir = write_function(tmp_path, "task", head + textwrap.indent(body, "    "))
    destination_dir = write_function(
        tmp_path,
        "destination",
        """
        import json, os

        def handler(event, context):
            with open(os.environ["RECORD_FILE"], "a") as out:
                out.write(json.dumps(event) + "\\n")
            return {"status": "recorded"}
        """,
    )
    return {
        "Resources": {
            "Task": function_resource(
                task_dir,
                variables={"RUNS_LOG": str(tmp_path / "runs.log")},
                on_failure="Destination",
                max_retries=max_retries,
            ),
            "Destination": function_resource(
                destination_dir, variables={"RECORD_FILE": str(tmp_path / "records.jsonl")}
            ),
        }
    }


@pytest.mark.parametrize("max_retries", [0, 1])
def test_a_failed_event_goes_to_the_on_failure_destination_after_its_retries(
    tmp_path: Path,
    local_lambda: Callable[..., LocalLambda],
    load_event: Callable[[str], Any],
    max_retries: int,
) -> None:
    # given a function that fails, with an on-failure destination
    template = destination_template(
        tmp_path, 'raise RuntimeError("upstream refused the export")\n', max_retries
    )
    service = local_lambda(template)
    event = {"cronfleet": {"task_id": "export", "slot": "2026-11-02T09:00:00Z"}, "n": 1}

    # when it is invoked asynchronously and the service has done everything it queued
    service.invoke("Task", event)
    assert service.drain(timeout=120)

    # then it ran once and once per retry, and the destination got one record
    runs = (tmp_path / "runs.log").read_text().splitlines()
    assert len(runs) == 1 + max_retries
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert len(records) == 1
    record = records[0]
    # the shape of the record Lambda sends (events/recorder_timeout.json is one)
    documented = load_event("recorder_timeout")
    assert set(record) == set(documented)
    assert set(record["requestContext"]) == set(documented["requestContext"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1 + max_retries
    assert record["requestContext"]["requestId"] == runs[-1]
    assert record["requestContext"]["functionArn"].endswith(":function:Task:$LATEST")
    assert record["requestPayload"] == event
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"] == {
        "errorType": "RuntimeError",
        "errorMessage": "upstream refused the export",
    }


def test_a_timed_out_event_sends_lambdas_timeout_to_the_destination(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    template = destination_template(tmp_path, "import time\ntime.sleep(120)\n", 0)
    template["Resources"]["Task"]["Properties"]["Timeout"] = 1
    service = local_lambda(template)

    service.invoke("Task", {"n": 1})
    assert service.drain(timeout=120)

    (record,) = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert record["responsePayload"]["errorType"] == "Sandbox.Timedout"
    assert record["responsePayload"]["errorMessage"].endswith("Task timed out after 1.00 seconds")


def test_a_successful_event_sends_nothing_to_the_destination(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    template = destination_template(tmp_path, 'return {"exported": 3}\n', 2)
    seen: list[Invocation] = []
    service = local_lambda(template, on_invocation=seen.append)

    service.invoke("Task", {"n": 1})
    assert service.drain(timeout=120)

    assert [(i.function, i.result) for i in seen] == [("Task", {"exported": 3})]
    assert len((tmp_path / "runs.log").read_text().splitlines()) == 1
    assert not (tmp_path / "records.jsonl").exists()


def test_an_invoke_of_an_unknown_function_is_refused_as_lambda_refuses_it(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    service = local_lambda(one_function(tmp_path, "def handler(event, context):\n    pass\n"))

    with pytest.raises(InvokeError) as refused:
        service.invoke("NoSuchFunction", {})

    assert refused.value.code == "ResourceNotFoundException"
    assert "NoSuchFunction" in refused.value.message
    assert not service.busy()


def test_a_function_is_found_by_the_arn_a_task_definition_gives(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    template = one_function(tmp_path, "def handler(event, context):\n    return 'ran'\n")
    service = local_lambda(template)

    invocation = service.run("arn:aws:lambda:us-east-1:123456789012:function:Fn:live", {})

    assert (invocation.function, invocation.result) == ("Fn", "ran")
