"""The retry schedule: exponential backoff with full jitter, pure and reproducible."""

from __future__ import annotations

import random

import pytest

from workers.backoff import BackoffPolicy, retry_delay

DEFAULT = BackoffPolicy()


def test_default_ceilings_double_from_two_minutes_and_end_within_thirty_minutes():
    assert [DEFAULT.ceiling(n) for n in range(1, 5)] == [120, 240, 480, 960]
    # Five attempts: four waits, the longest possible sum is exactly 30 minutes.
    assert DEFAULT.worst_case_span() == 30 * 60


def test_the_cap_bounds_every_wait():
    policy = BackoffPolicy(max_attempts=12, base_seconds=120, cap_seconds=960)
    assert [policy.ceiling(n) for n in (4, 5, 10, 500)] == [960, 960, 960, 960]


def test_full_jitter_draws_uniformly_below_the_ceiling_with_a_seeded_rng():
    first = [retry_delay(DEFAULT, n, random.Random(7)) for n in range(1, 5)]
    again = [retry_delay(DEFAULT, n, random.Random(7)) for n in range(1, 5)]
    expected = [random.Random(7).uniform(0, c) for c in (120, 240, 480, 960)]
    assert first == again == expected


def test_delays_stay_within_zero_and_the_ceiling_and_use_the_whole_range():
    rng = random.Random(1)
    delays = [retry_delay(DEFAULT, 2, rng) for _ in range(2000)]
    assert all(0 <= d <= 240 for d in delays)
    assert min(delays) < 24 and max(delays) > 216  # spread over the range, not clustered


def test_a_rate_limit_wait_is_a_floor():
    # The seeded draw for the first retry is below 100 s; Cal.com asked for 100 s.
    assert random.Random(3).uniform(0, 120) < 100
    assert retry_delay(DEFAULT, 1, random.Random(3), retry_after=100) == 100
    # A longer jittered wait is kept.
    long_draw = random.Random(3).uniform(0, 960)
    assert retry_delay(DEFAULT, 4, random.Random(3), retry_after=1) == max(long_draw, 1)


@pytest.mark.parametrize("settings", [
    {"max_attempts": 0},
    {"base_seconds": 0},
    {"base_seconds": 100, "cap_seconds": 50},
])
def test_nonsense_policies_are_refused(settings):
    with pytest.raises(ValueError):
        BackoffPolicy(**settings)


def test_a_wait_needs_a_failure_first():
    with pytest.raises(ValueError):
        DEFAULT.ceiling(0)


def test_policy_comes_from_the_app_config(app_config):
    policy = BackoffPolicy.from_config({"SYNC_MAX_ATTEMPTS": 3, "SYNC_BACKOFF_BASE_SECONDS": 10,
                                        "SYNC_BACKOFF_CAP_SECONDS": 15})
    assert (policy.max_attempts, policy.ceiling(1), policy.ceiling(2), policy.worst_case_span()) == (3, 10, 15, 25)


def test_the_app_refuses_to_start_with_a_nonsense_policy(app_config):
    from core import create_app

    app_config["SYNC_MAX_ATTEMPTS"] = 0
    with pytest.raises(ValueError, match="SYNC_MAX_ATTEMPTS"):
        create_app(app_config)
