"""Task registry: what a scheduled task is, and whether a declaration of one is valid.

- :mod:`~cronfleet.registry.definition`: the definition of one ``Custom::ScheduledTask``, and
  :func:`~cronfleet.registry.definition.parse_task_definition`, the rules every caller shares
  (the registry Lambda at deploy time, ``cronfleet validate`` before it);
- :mod:`~cronfleet.registry.problems`: the ``<LogicalId>.<Field>: <reason>`` lines;
- :mod:`~cronfleet.registry.custom_resource`: the CloudFormation protocol of the registry;
- :mod:`~cronfleet.registry.ownership`, :mod:`~cronfleet.registry.secrets`,
  :mod:`~cronfleet.registry.url_safety`: who owns a task, which secrets and which URLs a task
  may use.

Nothing is re-exported here: importing one of them loads only what it needs, which keeps the
functions' cold starts short. Validating a whole template is tooling (``cronfleet_tools``).
"""
