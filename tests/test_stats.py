import math

import numpy as np
import pytest

from pruneflow.stats import latency_stats


def test_statistics_to_the_digit_on_known_times():
    # first = 10 (reported apart); rest = 1, 2, 3, 4
    s = latency_stats([10.0, 1.0, 2.0, 3.0, 4.0])
    assert s["first"] == 10.0
    assert s["mean"] == 2.5
    # sample variance of 1..4 is 5/3; the std is its square root (the paper forgot the root)
    assert s["std"] == pytest.approx(math.sqrt(5 / 3), abs=1e-12)
    assert s["std"] == pytest.approx(1.2909944487358056, abs=1e-12)
    assert s["ste"] == pytest.approx(1.2909944487358056 / 2, abs=1e-12)
    assert s["p50"] == 2.5
    assert s["p90"] == pytest.approx(3.7, abs=1e-12)
    assert s["p99"] == pytest.approx(3.97, abs=1e-12)


def test_first_image_does_not_leak_into_the_rest():
    s = latency_stats([1000.0, 5.0, 5.0, 5.0])
    assert (s["mean"], s["std"], s["ste"], s["p99"]) == (5.0, 0.0, 0.0, 5.0)


def test_std_is_not_the_variance():
    rest = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    s = latency_stats([0.0, *rest])
    assert s["std"] == pytest.approx(np.std(rest, ddof=1))
    assert s["std"] != pytest.approx(np.var(rest, ddof=1))
    assert s["ste"] == pytest.approx(np.std(rest, ddof=1) / math.sqrt(8))


@pytest.mark.parametrize("times", [[], [1.0], [1.0, 2.0]])
def test_too_few_times_is_an_error(times):
    with pytest.raises(ValueError, match="at least 3"):
        latency_stats(times)
