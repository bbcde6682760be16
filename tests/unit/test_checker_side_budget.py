"""The checker never plans more checks than its function has time to finish and hand back."""

from restoredrill.domain.checker_side import RESULT_HANDOVER_SECONDS, policy_within
from restoredrill.ports.policy import DrillPolicy


def test_a_time_budget_longer_than_the_function_has_left_is_cut_to_fit() -> None:
    # Given a policy allowing 20 minutes of checks, in a checker with 14 minutes left
    policy = DrillPolicy.model_validate({"time_budget": "20m"})
    # When the checker sizes the suite's budget
    cut = policy_within(policy, seconds_left=840)
    # Then the suite ends (reporting what it could not reach as skipped) while there is still
    # time to hand the result back, and the rest of the policy is untouched
    assert cut.time_budget == 840 - RESULT_HANDOVER_SECONDS
    assert cut.model_dump(exclude={"time_budget"}) == policy.model_dump(exclude={"time_budget"})


def test_a_budget_that_fits_or_an_unknown_remaining_time_is_kept() -> None:
    # Given a 10-minute budget
    policy = DrillPolicy.model_validate({"time_budget": "10m"})
    # Then it is kept with 14 minutes left, or when the remaining time is not known (the CLI)
    assert policy_within(policy, seconds_left=840) is policy
    assert policy_within(policy, seconds_left=None) is policy
    # And with almost nothing left the budget is a token second, never negative
    assert policy_within(policy, seconds_left=3).time_budget == 1.0
