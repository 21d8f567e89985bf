"""The shared MLE machinery, checked on a model with a closed-form answer (exponential rate)."""

import numpy as np
import pandas as pd
import pytest

from ltvkit.errors import FitError, InputError, NotFittedError
from ltvkit.models.base import BaseModel


class Exponential(BaseModel):
    """Waiting times ~ Exponential(rate): the MLE is 1 / mean and its SE is rate / sqrt(n)."""

    param_names = ("rate",)
    data_columns = ("wait",)

    def _log_likelihood(self, p, d):
        return np.log(p[0]) - p[0] * d["wait"]

    def _gradient(self, p, d):
        return (1.0 / p[0] - d["wait"])[:, None]


class Redundant(Exponential):
    """Rate = a * b: only the product is identified."""

    param_names = ("a", "b")

    def _log_likelihood(self, p, d):
        return super()._log_likelihood(np.array([p[0] * p[1]]), d)

    _gradient = BaseModel._gradient


@pytest.fixture
def waits():
    return pd.DataFrame({"wait": np.random.default_rng(0).exponential(2.0, 500).round(1)})


def test_mle_and_standard_error_match_closed_form(waits):
    m = Exponential().fit(waits)
    rate = 1 / waits["wait"].mean()
    assert m.params_["rate"] == pytest.approx(rate, rel=1e-6)
    assert m.standard_errors_["rate"] == pytest.approx(rate / np.sqrt(500), rel=1e-3)
    assert m.converged_ and m.n_customers_ == 500
    expected_ll = 500 * np.log(rate) - rate * waits["wait"].sum()
    assert m.log_likelihood_ == pytest.approx(expected_ll, rel=1e-9)
    table = m.summary()
    assert table.loc["rate", "lower_95"] < rate < table.loc["rate", "upper_95"]
    assert "converged" in str(m) and repr(m).startswith("<Exponential rate=")


def test_weights_equal_repeated_rows(waits):
    counts = waits["wait"].value_counts()
    collapsed = pd.DataFrame({"wait": counts.index, "weights": counts.to_numpy()})
    a = Exponential().fit(waits)
    b = Exponential().fit(collapsed)  # the "weights" column is picked up by itself
    assert b.params_["rate"] == pytest.approx(a.params_["rate"], rel=1e-9)
    assert b.n_customers_ == 500


def test_bootstrap_and_laplace_agree_roughly(waits):
    m = Exponential().fit(waits, uncertainty="bootstrap", n_boot=60, seed=1)
    laplace_se = m.params_["rate"] / np.sqrt(500)
    assert m.standard_errors_["rate"] == pytest.approx(laplace_se, rel=0.35)
    draws = m.sample_params(10, seed=2)
    assert draws.shape == (10, 1) and np.all(draws > 0)


def test_penalizer_shrinks_towards_zero(waits):
    assert Exponential(penalizer=0.5).fit(waits).params_["rate"] < Exponential().fit(waits).params_["rate"]


def test_not_identified_parameter_is_named(waits):
    with pytest.raises(FitError, match="not identified"):
        Redundant().fit(waits)


def test_predict_interval_is_labelled(waits):
    m = Exponential().fit(waits)
    point = m._predict(lambda p, d: p[0] * d["wait"])
    band = m._predict(lambda p, d: p[0] * d["wait"], interval=0.9)
    assert list(band.columns) == ["mean", "low", "high"]
    assert np.all(band["low"] <= point.to_numpy() + 1e-12) and np.all(point.to_numpy() <= band["high"] + 1e-12)
    assert band.attrs["uncertainty"] == "parameter uncertainty (90% interval)"


def test_from_params_and_not_fitted_messages():
    with pytest.raises(NotFittedError, match="not fitted"):
        Exponential()._params  # noqa: B018
    m = Exponential.from_params(rate=0.5)
    assert m.params_ == {"rate": 0.5}
    with pytest.raises(InputError, match="no parameter uncertainty"):
        m.sample_params(5)
    with pytest.raises(InputError, match="needs exactly rate"):
        Exponential.from_params(speed=1.0)
    with pytest.raises(InputError, match="positive"):
        Exponential.from_params(rate=-1.0)


def test_bad_rows_are_named():
    data = pd.DataFrame({"wait": [1.0, -2.0, np.nan]}, index=["c1", "c2", "c3"])
    with pytest.raises(InputError, match=r"wait is missing or not finite.*'c3'"):
        Exponential().fit(data)
    with pytest.raises(InputError, match=r"needs column\(s\) wait; the data has time"):
        Exponential().fit(pd.DataFrame({"time": [1.0]}))
