"""The waits of a ``_retry_policy`` (chalicelib.rules.retry_policy), checked against upstream Zaqar's definition.

Upstream (zaqar/notification/tasks/webhook.py) retries in four phases: ``retries_with_no_delay`` immediate
retries, ``minimum_delay_retries`` retries ``minimum_delay`` apart, a backoff phase of
``int((maximum_delay - minimum_delay) / 5)`` waits shaped by ``retry_backoff_function`` (linear:
``range(minimum_delay, maximum_delay, 5)``; arithmetic: ``minimum_delay + (a - 1) * a * d / 2`` with ``d`` chosen
so the last wait is the maximum; geometric and exponential: ``minimum_delay * k ** (a - 1)`` with ``k`` chosen
so the last wait is the maximum), then ``maximum_delay_retries`` retries ``maximum_delay`` apart. The expected
values here are worked out from those formulas (by hand, or with exact arithmetic), not read off the code;
``check`` (the bounds a stored policy must respect), ``effective`` (which policy wins) and the cap on counts of
policies stored before the cap are checked too.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from chalicelib import errors
from chalicelib.rules.retry_policy import FUNCTIONS, MAX_RETRIES, STEP, RetryPolicy, check, effective

# (minimum_delay, maximum_delay) pairs that check() accepts
SPANS = [(0, 10), (1, 11), (5, 30), (5, 32), (10, 60), (3, 24), (1, 16), (30, 900), (0, 900), (899 - 10, 899)]


def policy(**fields: object) -> RetryPolicy:
    return RetryPolicy(**fields)  # type: ignore[arg-type]


def steps(low: int, high: int) -> int:
    """Upstream's x_max: how many waits the backoff phase has."""
    return (high - low) // STEP


# --- the phases around the backoff ------------------------------------------------------------------------------

def test_the_default_policy_is_upstreams_and_its_fourteen_waits_are_known() -> None:
    default = RetryPolicy()
    assert (default.retries_with_no_delay, default.minimum_delay_retries, default.minimum_delay,
            default.maximum_delay, default.maximum_delay_retries, default.retry_backoff_function) == (
        3, 3, 5, 30, 3, "linear")  # upstream's consts.RETRIES_WITH_NO_DELAY ... MAXIMUM_DELAY_RETRIES
    # 3 immediate, 3 at the minimum, range(5, 30, 5), 3 at the maximum
    assert default.delays() == [0, 0, 0, 5, 5, 5, 5, 10, 15, 20, 25, 30, 30, 30]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(("no_delay", "at_minimum", "at_maximum"), [(0, 0, 0), (3, 3, 3), (1, 0, 2), (0, 4, 0),
                                                                   (7, 1, 5)])
def test_the_phases_come_in_order_with_their_counts(function: str, no_delay: int, at_minimum: int,
                                                    at_maximum: int) -> None:
    p = policy(retries_with_no_delay=no_delay, minimum_delay_retries=at_minimum, maximum_delay_retries=at_maximum,
               minimum_delay=5, maximum_delay=30, retry_backoff_function=function)
    waits = p.delays()
    backoff = steps(5, 30)
    assert len(waits) == no_delay + at_minimum + backoff + at_maximum
    assert waits[:no_delay] == [0] * no_delay
    assert waits[no_delay:no_delay + at_minimum] == [5] * at_minimum
    assert waits[no_delay + at_minimum:no_delay + at_minimum + backoff] == p.backoff()
    assert waits[len(waits) - at_maximum:] == [30] * at_maximum


def test_the_no_delay_retries_are_immediate_and_none_means_the_first_retry_waits() -> None:
    immediate = policy(retries_with_no_delay=2, minimum_delay_retries=1, minimum_delay=20, maximum_delay=40)
    assert [immediate.delay_before(n) for n in (1, 2, 3)] == [0, 0, 20]
    waiting = policy(retries_with_no_delay=0, minimum_delay_retries=1, minimum_delay=20, maximum_delay=40)
    assert waiting.delay_before(1) == 20
    assert 0 not in waiting.delays()  # nothing is immediate when no immediate retry is asked for


def test_delay_before_counts_retries_from_one_and_says_none_when_they_are_used_up() -> None:
    p = RetryPolicy()
    total = len(p.delays())
    assert p.delay_before(0) is None  # the first attempt is not a retry
    assert p.delay_before(-1) is None
    assert [p.delay_before(n) for n in range(1, total + 1)] == p.delays()
    assert p.delay_before(total) == p.maximum_delay
    assert p.delay_before(total + 1) is None
    assert p.delay_before(10**6) is None


def test_a_policy_of_no_retries_but_the_backoff_has_only_the_backoff() -> None:
    p = policy(retries_with_no_delay=0, minimum_delay_retries=0, maximum_delay_retries=0, minimum_delay=0,
               maximum_delay=10)
    assert p.delays() == [0, 5]  # range(0, 10, 5); the e2e stack test relies on these two waits


# --- linear -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("low", "high", "expected"), [
    (5, 30, [5, 10, 15, 20, 25]),
    (0, 10, [0, 5]),
    (10, 60, [10, 15, 20, 25, 30, 35, 40, 45, 50, 55]),
    (100, 120, [100, 105, 110, 115]),
])
def test_linear_steps_by_five_seconds_from_the_minimum_and_stops_below_the_maximum(
        low: int, high: int, expected: list[int]) -> None:
    assert policy(minimum_delay=low, maximum_delay=high).backoff() == expected
    assert expected == list(range(low, high, STEP))  # upstream's _Linear_function


@pytest.mark.parametrize(("low", "high"), [(5, 32), (1, 12), (0, 14)])
def test_linear_matches_upstream_when_the_span_is_not_a_multiple_of_five(low: int, high: int) -> None:
    assert policy(minimum_delay=low, maximum_delay=high).backoff() == list(range(low, high, STEP))


# --- arithmetic -------------------------------------------------------------------------------------------------

def arithmetic_ideal(low: int, high: int) -> list[Fraction]:
    """Upstream's _Arithmetic_function before int(): minimum + (a-1)*a*d/2, d = 2*(max-min)/(x_max*(x_max-1))."""
    x_max = steps(low, high)
    d = Fraction(2 * (high - low), x_max * (x_max - 1))
    return [low + Fraction((a - 1) * a) * d / 2 for a in range(1, x_max + 1)]


def test_arithmetic_from_5_to_30_by_hand() -> None:
    # five waits; the gaps grow by the same amount (2.5 s): 5, 7.5, 12.5, 20, 30, truncated as upstream does
    assert policy(minimum_delay=5, maximum_delay=30, retry_backoff_function="arithmetic").backoff() == [
        5, 7, 12, 20, 30]


@pytest.mark.parametrize(("low", "high"), SPANS)
def test_arithmetic_follows_upstreams_formula(low: int, high: int) -> None:
    got = policy(minimum_delay=low, maximum_delay=high, retry_backoff_function="arithmetic").backoff()
    ideal = arithmetic_ideal(low, high)
    assert len(got) == len(ideal)
    for wait, exact in zip(got, ideal, strict=True):
        # truncated, as upstream's int(); a whole exact value may come out a second short through floating point
        assert exact - 1 <= wait <= exact, (low, high, got)
    assert got[0] == low and got[-1] == high


# --- geometric and exponential ----------------------------------------------------------------------------------

def test_geometric_with_a_whole_ratio_by_hand() -> None:
    # 1..16 has three waits and a ratio of 4 between them
    assert policy(minimum_delay=1, maximum_delay=16, retry_backoff_function="geometric").backoff() == [1, 4, 16]


def test_geometric_from_5_to_30_by_hand() -> None:
    # ratio 6 ** (1/4) = 1.565: 5, 7.83, 12.25, 19.17, 30
    assert policy(minimum_delay=5, maximum_delay=30, retry_backoff_function="geometric").backoff() == [
        5, 7, 12, 19, 30]


@pytest.mark.parametrize("function", ["geometric", "exponential"])
@pytest.mark.parametrize(("low", "high"), [span for span in SPANS if span[0] > 0])
def test_geometric_and_exponential_grow_by_one_ratio_from_the_minimum_to_the_maximum(
        function: str, low: int, high: int) -> None:
    got = policy(minimum_delay=low, maximum_delay=high, retry_backoff_function=function).backoff()
    x_max = steps(low, high)
    assert len(got) == x_max
    ratio = (high / low) ** (1 / (x_max - 1))  # upstream's k
    for a, wait in enumerate(got, 1):
        ideal = low * ratio ** (a - 1)
        # truncated; 3 * 8 ** (2/3) is 11.999... in floating point, so a whole value may be a second short
        assert ideal - 1 - 1e-6 <= wait <= ideal + 1e-6, (function, low, high, a, got)
    assert got[0] == low and got[-1] == high


@pytest.mark.parametrize(("low", "high"), SPANS)
def test_exponential_is_the_same_curve_as_geometric(low: int, high: int) -> None:
    # upstream: p * k**a with p = minimum / k, which is minimum * k**(a-1)
    geometric = policy(minimum_delay=low, maximum_delay=high, retry_backoff_function="geometric")
    exponential = policy(minimum_delay=low, maximum_delay=high, retry_backoff_function="exponential")
    assert exponential.backoff() == geometric.backoff()


@pytest.mark.parametrize("function", ["geometric", "exponential"])
def test_a_zero_minimum_does_not_divide_by_zero(function: str) -> None:
    # upstream divides by the minimum and fails; check() accepts a minimum of 0, so the waits must still be sane
    got = policy(minimum_delay=0, maximum_delay=20, retry_backoff_function=function).backoff()
    assert len(got) == 4 and got[0] == 0 and got[-1] == 20
    assert got == sorted(got)


# --- bounds, for every function ---------------------------------------------------------------------------------

@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(("low", "high"), SPANS)
def test_every_wait_stays_within_the_delays_and_never_shrinks(function: str, low: int, high: int) -> None:
    p = policy(minimum_delay=low, maximum_delay=high, retry_backoff_function=function)
    backoff = p.backoff()
    # linear is upstream's range(minimum, maximum, 5); the others take (maximum - minimum) // 5 steps
    assert len(backoff) == (len(range(low, high, STEP)) if function == "linear" else steps(low, high)) >= 2
    assert backoff[0] == low
    assert all(low <= wait <= high for wait in backoff)
    assert backoff == sorted(backoff)
    waits = p.delays()
    assert all(0 <= wait <= high for wait in waits)
    assert waits == sorted(waits)  # no phase ever waits less than the one before it
    assert max(waits) <= 900  # SQS's DelaySeconds limit, which each wait becomes


@pytest.mark.parametrize("function", ["arithmetic", "geometric", "exponential"])
@pytest.mark.parametrize(("low", "high"), [(10, 300), (5, 30), (1, 16), (30, 900)])
def test_the_curved_functions_start_slow_and_grow_ever_faster(function: str, low: int, high: int) -> None:
    got = policy(minimum_delay=low, maximum_delay=high, retry_backoff_function=function).backoff()
    gaps = [b - a for a, b in itertools.pairwise(got)]
    assert gaps[-1] > gaps[0]
    # convex: never above the straight line between the same first and last wait
    last = len(got) - 1
    assert all(wait <= low + (high - low) * i / last + 1e-6 for i, wait in enumerate(got)), got
    # and so, unlike linear, they reach the maximum only at their last wait
    assert got[-1] == high and all(wait < high for wait in got[:-1])


# --- check: what a stored policy may say ------------------------------------------------------------------------

def refusal(raw: object) -> str:
    with pytest.raises(errors.InvalidBody) as caught:
        check(raw, "Queue")
    return caught.value.description


def test_a_complete_valid_policy_is_returned_as_it_is() -> None:
    raw = {"retries_with_no_delay": 1, "minimum_delay_retries": 2, "minimum_delay": 10, "maximum_delay": 900,
           "maximum_delay_retries": 3, "retry_backoff_function": "geometric", "ignore_subscription_override": True}
    assert check(raw, "Queue") is raw
    assert check({}, "Queue") == {}


@pytest.mark.parametrize(("raw", "words"), [
    ([], "must be a JSON object"),
    ({"minimum_delay": 40, "maximum_delay": 30}, "maximum_delay must not be below minimum_delay"),
    ({"minimum_delay": 25}, "maximum_delay - minimum_delay of at least 10"),  # the default maximum is 30
    ({"minimum_delay": 0, "maximum_delay": 9}, "at least 10"),
    ({"maximum_delay": 901}, "at most 900 seconds"),
    ({"minimum_delay": -1}, "minimum_delay must be a non-negative integer"),
    ({"maximum_delay": 30.5}, "maximum_delay must be a non-negative integer"),
    ({"retries_with_no_delay": True}, "retries_with_no_delay must be a non-negative integer"),
    ({"minimum_delay_retries": "3"}, "minimum_delay_retries must be a non-negative integer"),
    ({"maximum_delay_retries": MAX_RETRIES + 1}, f"maximum_delay_retries may be at most {MAX_RETRIES}"),
    ({"retry_backoff_function": "quadratic"}, "must be one of linear, arithmetic, geometric, exponential"),
    ({"ignore_subscription_override": "yes"}, "must be true or false"),
    ({"max_delay": 30}, "unknown keys: max_delay"),
])
def test_policies_outside_the_bounds_are_refused(raw: object, words: str) -> None:
    assert words in refusal(raw)


def test_the_narrowest_and_widest_accepted_spans() -> None:
    check({"minimum_delay": 0, "maximum_delay": 2 * STEP}, "Queue")
    check({"minimum_delay": 0, "maximum_delay": 900, "maximum_delay_retries": MAX_RETRIES}, "Queue")


# --- effective: which policy a delivery follows ----------------------------------------------------------------

QUEUE = {"minimum_delay": 10, "maximum_delay": 60, "retry_backoff_function": "arithmetic"}
SUBSCRIPTION = {"minimum_delay": 1, "maximum_delay": 16, "retry_backoff_function": "geometric"}


def test_the_subscriptions_policy_wins_over_the_queues() -> None:
    assert effective(QUEUE, SUBSCRIPTION) == policy(**SUBSCRIPTION)
    assert effective(QUEUE, None) == policy(**QUEUE)
    assert effective(None, None) == RetryPolicy()


def test_ignore_subscription_override_on_either_side_makes_the_queues_policy_win() -> None:
    assert effective({**QUEUE, "ignore_subscription_override": True}, SUBSCRIPTION).minimum_delay == 10
    assert effective(QUEUE, {**SUBSCRIPTION, "ignore_subscription_override": True}).minimum_delay == 10
    # as upstream: with the flag and no queue policy, the defaults apply
    assert effective(None, {**SUBSCRIPTION, "ignore_subscription_override": True}) == RetryPolicy()


def test_counts_of_a_policy_stored_before_they_were_bounded_are_capped() -> None:
    stored = {"retries_with_no_delay": 10**9, "minimum_delay_retries": 10**9, "maximum_delay_retries": 10**9}
    capped = effective(None, stored)
    assert (capped.retries_with_no_delay, capped.minimum_delay_retries, capped.maximum_delay_retries) == (
        MAX_RETRIES, MAX_RETRIES, MAX_RETRIES)
    assert len(capped.delays()) == 3 * MAX_RETRIES + steps(5, 30)
