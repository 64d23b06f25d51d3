"""cronfleet on one machine: the local engines that stand in for AWS services.

Nothing here runs inside Lambda; the test suite, ``make bench`` and the local scheduler use it.
"""

from cronfleet_tools.local.dynamodb_local import (
    DYNAMODB_LOCAL_VERSION,
    INSTALL_DIR_ENV,
    DynamoDBLocal,
    DynamoDBLocalError,
    JarNotFound,
    JavaNotFound,
    JavaTooOld,
    StartupFailed,
    create_table,
    create_tables_from_template,
    default_install_dir,
)

__all__ = [
    "DYNAMODB_LOCAL_VERSION",
    "INSTALL_DIR_ENV",
    "DynamoDBLocal",
    "DynamoDBLocalError",
    "JarNotFound",
    "JavaNotFound",
    "JavaTooOld",
    "StartupFailed",
    "create_table",
    "create_tables_from_template",
    "default_install_dir",
]
