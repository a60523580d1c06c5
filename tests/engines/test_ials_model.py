"""iALS fitting on arrays: no app, no database."""

from __future__ import annotations

import numpy as np

from recommender.engines.ials.model import Setting, fit


def test_the_factors_do_not_depend_on_the_number_of_threads():
    """Training takes the machine's training threads; the stored factors (and so every
    recorded metric) must be the same as with one."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, 300, 4000)
    rows = 1 + rng.zipf(1.5, 4000) % 120
    setting = Setting(factors=16, regularization=10.0, alpha=5.0)

    one, two = (fit(users, rows, 300, 121, setting, seed=3, threads=t) for t in (1, 2))

    assert one.shape == (121, 16)
    assert np.abs(one).max() > 0
    np.testing.assert_array_equal(one, two)
