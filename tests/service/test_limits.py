"""Limits per student and assignment, as pure functions of earlier attempt times."""
from __future__ import annotations

from coursectl.service.limits import RateLimits, check_rate


def test_minimum_interval():
    lim = RateLimits(attempts_per_hour=0, min_interval_s=30)
    assert check_rate(lim, 1000.0, []) is None
    refused = check_rate(lim, 1010.0, [1000.0])
    assert refused and refused.retry_after == 20 and "30 s" in refused.reason
    assert check_rate(lim, 1030.0, [1000.0]) is None


def test_attempts_per_hour_is_a_sliding_hour():
    lim = RateLimits(attempts_per_hour=3, min_interval_s=0)
    times = [0.0, 100.0, 200.0]
    refused = check_rate(lim, 300.0, times)
    assert refused and refused.retry_after == 3300  # the first leaves the window at 3600
    assert check_rate(lim, 3600.5, times) is None
    assert check_rate(lim, 300.0, times[:2]) is None


def test_zero_switches_a_limit_off():
    assert check_rate(RateLimits(0, 0), 5.0, [4.9] * 1000) is None
