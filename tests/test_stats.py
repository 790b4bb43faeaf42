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


@pytest.mark.parametrize(
    ("correct", "n", "low", "high"),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table II,
    # the Wilson score method (3), to its four digits
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_the_wilson_interval_of_an_accuracy_to_the_published_digit(correct, n, low, high):
    from pruneflow.stats import wilson_interval

    got = wilson_interval(correct, n)
    assert (round(got[0], 4), round(got[1], 4)) == (low, high)


def _pairs(a: int, b: int, c: int, d: int):
    """Per-image correctness of a model and its reference from the paired 2x2 table."""
    model = [True] * (a + b) + [False] * (c + d)
    reference = [True] * a + [False] * b + [True] * c + [False] * d
    return model, reference


def test_the_paired_comparison_to_the_published_digit():
    """Cavo et al. (2012) in Fagerland, Lydersen & Laake (2017), ch. 8, as their R package
    contingencytables prints it: Newcombe's square-and-add interval -0.0621 (-0.1186 to
    -0.0046); the exact McNemar p-value is the two-sided binomial tail of 6 in 22."""
    import math

    from pruneflow.stats import paired_comparison

    r = paired_comparison(*_pairs(59, 6, 16, 80))
    assert (r["b"], r["c"], r["n"]) == (6, 16, 161)
    assert round(r["delta"], 4) == -0.0621
    assert (round(r["ci_low"], 4), round(r["ci_high"], 4)) == (-0.1186, -0.0046)
    tail = 2 * sum(math.comb(22, k) for k in range(7)) / 2**22
    assert r["p"] == pytest.approx(tail, rel=1e-12) and round(r["p"], 4) == 0.0525


def test_a_model_equal_to_its_reference_image_by_image_still_has_an_interval():
    from pruneflow.stats import paired_comparison

    r = paired_comparison(*_pairs(530, 0, 0, 10))
    assert r["delta"] == 0 and r["p"] == 1.0
    assert r["ci_low"] < 0 < r["ci_high"]  # 540 images cannot prove two models equal
    swapped = paired_comparison(*_pairs(59, 16, 6, 80))
    assert round(swapped["ci_low"], 4) == 0.0046 and round(swapped["ci_high"], 4) == 0.1186
