"""Schedules made at run time through the management API: tasks owned by a tenant.

:mod:`.models` (the API's bodies), :mod:`.service` (the rules: validation by the task
definition's own code, ownership, quota), :mod:`.api` (the routes on Powertools' Event Handler).
"""
