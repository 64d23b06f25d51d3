"""The life of one scheduled slot: its states, its attempts, and the envelope a run receives.

Every slot of every task ends in exactly one final state. Attempts are retries within the slot,
each one recorded. The rules are pure (``states``, ``slots``, ``retry``, ``envelope``,
``outcomes``); the attempts service (``attempts``) applies them through the store, and is what
the dispatcher, its watchdog, the task wrapper (``wrapper``) and the recorder share.

::

    claimed ──> PENDING ──> RUNNING ──> SUCCEEDED
                  │            │──────> FAILED / TIMED_OUT   (no attempts left, or not retryable)
                  │            `──────> RETRY_WAIT ──> PENDING (attempt + 1)
                  `── never started: re-dispatched once, then LOST (a failed attempt)
    QUEUED (overlap queue_one) ──> PENDING
    SKIPPED (overlap skip, paused), MISSED (later than the maximum lateness): final at once
"""
