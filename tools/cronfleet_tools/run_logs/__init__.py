"""A run's log lines: from the local stack's files or from CloudWatch Logs, read alike.

:mod:`~cronfleet_tools.run_logs.local` reads the files the local Lambda writes,
:mod:`~cronfleet_tools.run_logs.cloudwatch` the stack's log group; both give
:class:`~cronfleet_tools.run_logs.lines.LogLine` in the order they were written, and
:mod:`~cronfleet_tools.run_logs.lines` says how a person reads them.
"""
