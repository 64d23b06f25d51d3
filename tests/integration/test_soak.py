"""The soak, short: a day of a mixed fleet under races and 5% faults ends with nothing lost,
nothing duplicated and nothing wrongly final; and with each fix turned off, it says so.

``make soak`` runs the long one (30 days, 50 tasks); this is its smoke test inside
``make test``. See tests/support/soak.py for what the harness plays and what it judges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.soak import MUTANTS, SoakConfig, run_soak

if TYPE_CHECKING:
    from cronfleet_tools.local.dynamodb_local import DynamoDBLocal

pytestmark = pytest.mark.integration


def test_a_day_of_races_and_faults_loses_duplicates_and_misstates_nothing(
    dynamodb_local: DynamoDBLocal,
) -> None:
    # given a day of 30 tasks, with every kind of fault and race the harness plays
    config = SoakConfig(days=1, tasks=30, seed=11)

    # when it has run, settled and been audited
    result = run_soak(config, dynamodb_local)

    # then every expected slot is final, and the ledger agrees with what the code did
    assert result.expected > 500
    assert (result.lost, result.duplicated, result.wrongly_final) == (0, 0, 0), result.lines()
    assert result.wedged == 0, result.lines()
    assert result.final == result.expected
    # and the faults really happened, of every kind
    assert set(result.faults) == {
        "lost_response",
        "throttle",
        "internal_error",
        "stall",
        "late_original",
        "crash",
    }
    for played in (
        "racing_ticks",
        "duplicate_deliveries",
        "dropped_deliveries",
        "deploys",
        # busy ticks went to the dispatch workers, some twice at once, some crashed and were
        # retried, and some ran out of time and handed on to continuations
        "shard_invocations",
        "duplicate_shard_deliveries",
        "shard_crashes",
        "shard_continuations",
    ):
        assert result.counts[played] > 0, played


@pytest.mark.parametrize("mutant", MUTANTS)
def test_with_a_fix_turned_off_the_soak_finds_what_it_left_behind(
    dynamodb_local: DynamoDBLocal, mutant: str
) -> None:
    # given the same engine with one of its fixes turned off
    config = SoakConfig(days=1, tasks=20, seed=11, mutant=mutant)

    # when the soak runs
    result = run_soak(config, dynamodb_local)

    # then its verdict is not clean
    assert not result.clean, result.lines()
