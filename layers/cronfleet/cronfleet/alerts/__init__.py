"""Alerts: which health transitions a task's owner hears about, and how they read.

Alerts follow transitions, not every failure. A task that fails every five minutes raises one
FAILING alert when its consecutive failures reach the threshold, then stays quiet until it
recovers (or, if RealertAfterSeconds is set, until that long has passed since the last one).

The package: :mod:`~cronfleet.alerts.policy` decides which alerts an event raises (pure),
:mod:`~cronfleet.alerts.render` writes them (subject, email, JSON, console links),
:mod:`~cronfleet.alerts.sns` is the only code here that touches boto3, and
:mod:`~cronfleet.alerts.alerter` wires them to the lifecycle.

===============  ========  ======================================================
kind             severity  raised when
===============  ========  ======================================================
FAILING          critical  consecutive failures cross the threshold (or re-alert)
RECOVERED        info      the first success after the task was failing
TIMED_OUT        warning   an attempt timed out while the task was not yet failing
SLOW             warning   a successful run took longer than SlowerThanSeconds
MISSED           warning   slots were missed
DISPATCH_FAILED  critical  an invoke was refused (throttled, no function, no access)
STUCK            critical  the watchdog gave up on a run that would not finish
LOST             warning   a run's code never started, even after a second invoke
TICK_CLAMPED     critical  the dispatcher was sent a tick dated far from its clock
===============  ========  ======================================================

TICK_CLAMPED is about the dispatcher, not a task: its task id is ``#dispatcher``.
"""
