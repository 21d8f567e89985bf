"""Gamma-Gamma spend model (Fader & Hardie 2013, note 025): expected value of a customer's future orders.

Model ("The Gamma-Gamma model of monetary value", Fader & Hardie 2013, after Colombo & Jiang 1999):
a customer's order values are Gamma(p, nu) (shape p, rate nu); ``nu ~ Gamma(q, gamma)`` across
customers. The mean ``zbar`` of a customer's ``x`` repeat orders is then Gamma(p x, nu x), and its
density given x, with nu integrated out, is::

    f(zbar | x) = G(p x + q) / (G(p x) G(q)) * gamma^q x^(p x) zbar^(p x - 1) / (gamma + x zbar)^(p x + q)

The model is fitted on repeat buyers only (x > 0; a first order is often atypical) and assumes
spend is independent of purchase frequency (check it with :meth:`GammaGamma.independence_check`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from ltvkit.errors import InputError
from ltvkit.models.base import BaseModel, _check_rows

__all__ = ["GammaGamma"]

Array = np.ndarray


class _Rows:
    """Likelihood data with the distinct frequencies and per-row constants precomputed.

    Gamma and digamma functions of ``p x`` run once per distinct frequency (~100 values) and
    ``log zbar`` once per fit, leaving one logarithm per row and evaluation.
    """

    def __init__(self, x: Array, z: Array) -> None:
        self.x, self.z = x, z
        self.xz = x * z
        self.ix, self.ux = pd.factorize(x)
        self.log_ux = np.log(self.ux)
        self.log_z = np.log(z)
        self.x_log_z = x * self.log_z


def _log_density(params: Array, rows: _Rows) -> Array:
    """log f(zbar | x) (note 025, the Gamma(p x, nu x) density of zbar with nu integrated out)."""
    return _log_density_and_gradient(params, rows, grad=False)[0]


def _log_density_and_gradient(params: Array, rows: _Rows, grad: bool = True
                              ) -> tuple[Array, Array | None]:
    """:func:`_log_density` and its per-row gradient wrt (p, q, gamma), shape (n, 3), in one pass.

    ``log(gamma + x zbar)`` is computed once, functions of the frequency once per distinct
    frequency (gathered with ``np.take``).
    """
    p, q, g = params
    x, pu, ix = rows.x, p * rows.ux, rows.ix
    g_xz = g + rows.xz
    log_gxz = np.log(g_xz)
    per_x = gammaln(pu + q) - gammaln(pu) - gammaln(q) + q * np.log(g) + pu * rows.log_ux
    px_q = p * x + q
    ll = np.take(per_x, ix) + p * rows.x_log_z - rows.log_z - px_q * log_gxz
    if not grad:
        return ll, None
    psi = digamma(pu + q)
    out = np.empty((x.shape[0], 3))
    out[:, 0] = np.take(rows.ux * (psi - digamma(pu) + rows.log_ux), ix) + rows.x_log_z - x * log_gxz
    out[:, 1] = np.take(psi - digamma(q) + np.log(g), ix) - log_gxz
    out[:, 2] = q / g - px_q / g_xz
    return ll, out


class GammaGamma(BaseModel):
    """Gamma-Gamma model of the mean order value (Fader & Hardie 2013, note 025).

    Parameters (learned by ``fit``): ``p`` (shape of a customer's order values), ``q`` and
    ``gamma`` (heterogeneity of the order-value rate). The population mean order value is
    ``p gamma / (q - 1)`` (finite only when q > 1).

    ``fit`` uses the customers with at least one repeat purchase; customers with
    ``frequency == 0`` are left out and counted in ``n_excluded_`` (and ``summary().attrs``).
    ``spend_correlation_`` is the Pearson correlation of frequency and mean spend among the repeat
    buyers: the model assumes they are independent.

    Parameters
    ----------
    penalizer : float
        L2 penalty ``penalizer * sum(params**2)`` on the parameters (0 = maximum likelihood).

    Examples
    --------
    >>> import pandas as pd
    >>> from ltvkit import GammaGamma
    >>> m = GammaGamma.from_params(p=6.25, q=3.74, gamma=15.44)
    >>> d = pd.DataFrame({"frequency": [0, 1, 10], "monetary_value": [0.0, 100.0, 100.0]})
    >>> m.expected_spend(d).round(2).tolist()
    [35.22, 80.26, 97.28]
    """

    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    data_columns: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")

    def fit(self, data: pd.DataFrame | Mapping[str, Any], weights: Any = None, **kwargs: Any) -> Self:
        """Fit on the repeat buyers of ``data`` (rows with frequency > 0).

        Rows with ``frequency == 0`` carry no repeat spend: they are excluded, and their number
        (customers, counting weights) is stored in ``n_excluded_``. Other arguments as in
        :meth:`ltvkit.models.base.BaseModel.fit`. Predictions with ``data=None`` cover all rows.

        Raises
        ------
        InputError
            If a repeat buyer has ``monetary_value <= 0`` (the rows are named), or no row has
            a repeat purchase.
        """
        d, index = self._extract(data)
        w = self._weights(data, weights, len(index))
        keep = d["frequency"] > 0
        if not np.any(keep & (w > 0)):
            raise InputError(
                "GammaGamma needs customers with at least one repeat purchase (frequency > 0); "
                f"none among the {len(index):,} rows given"
            )
        excluded = float(w[~keep].sum())
        self.n_excluded_ = int(excluded) if excluded.is_integer() else excluded
        repeat = pd.DataFrame({c: v[keep] for c, v in d.items()}, index=index[keep])
        super().fit(repeat, weights=w[keep], **kwargs)
        self._train = (d, index)
        x, z = d["frequency"][keep], d["monetary_value"][keep]
        self.spend_correlation_ = float(np.corrcoef(x, z)[0, 1]) if x.size > 2 and np.ptp(x) > 0 else float("nan")
        return self

    def _validate(self, d: dict[str, Array], index: pd.Index) -> None:
        x, z = d["frequency"], d["monetary_value"]
        _check_rows(x != np.round(x), index, "frequency is not a whole number", d, "frequency")
        _check_rows((x > 0) & (z <= 0), index,
                    "a repeat buyer (frequency > 0) has monetary_value <= 0 (the Gamma-Gamma model "
                    "needs a positive mean repeat spend; drop returns-only customers or net them "
                    "out before summarising)", d, "monetary_value")

    def _prepare(self, d: dict[str, Array]) -> _Rows:
        return _Rows(d["frequency"], d["monetary_value"])

    def _log_likelihood(self, params: Array, d: dict[str, Array]) -> Array:
        return _log_density(params, self._prepared(d))

    def _log_likelihood_and_gradient(self, params: Array, d: dict[str, Array]) -> tuple[Array, Array]:
        return _log_density_and_gradient(params, self._prepared(d))

    def _initial_params(self, d: dict[str, Array], weights: Array) -> Array:
        # p = 1, q = 2 puts the population mean p gamma / (q - 1) at gamma: start it at the mean spend
        return np.array([1.0, 2.0, float(np.average(d["monetary_value"], weights=weights))])

    def summary(self) -> pd.DataFrame:
        """Parameter table (see :meth:`BaseModel.summary`).

        ``attrs`` adds ``n_excluded`` (customers without repeat purchase left out of the fit) and
        ``spend_frequency_correlation`` (Pearson, repeat buyers; see :meth:`independence_check`).
        """
        table = super().summary()
        table.attrs["n_excluded"] = getattr(self, "n_excluded_", 0)
        table.attrs["spend_frequency_correlation"] = getattr(self, "spend_correlation_", float("nan"))
        return table

    def expected_spend(self, data: Any = None, interval: float | None = None) -> Any:
        """Expected value of a customer's future orders given their past mean spend (note 025, eq. 5).

        ::

            E(Z | zbar, x) = (q - 1) / (p x + q - 1) * p gamma / (q - 1)
                             + p x / (p x + q - 1) * zbar

        a weighted mean of the population mean ``p gamma / (q - 1)`` and the customer's own mean
        ``zbar``. Customers with no repeat purchase get the population mean. When ``q <= 1`` the
        population mean is infinite: a warning is issued and those customers get ``inf``.

        Examples
        --------
        >>> import pandas as pd
        >>> m = GammaGamma.from_params(p=6.25, q=3.74, gamma=15.44)
        >>> m.expected_spend(pd.DataFrame({"frequency": [2], "monetary_value": [20.0]})).round(3).tolist()
        [22.736]
        """
        if self._params[1] <= 1.0:
            warnings.warn(
                f"GammaGamma q={self._params[1]:.3g} <= 1: the population mean spend is infinite; "
                "customers without repeat purchases get inf. The model fits these data poorly "
                "(very heavy-tailed spend): check for outliers in monetary_value.",
                UserWarning, stacklevel=2,
            )
        return self._predict(self._expected_spend, data, interval)

    @staticmethod
    def _expected_spend(params: Array, d: dict[str, Array]) -> Array:
        p, q, g = params
        x, z = d["frequency"], d["monetary_value"]
        population = p * g / (q - 1.0) if q > 1.0 else np.inf
        with np.errstate(divide="ignore", invalid="ignore"):
            own = p * (g + x * z) / (p * x + q - 1.0)
        return np.where(x > 0, own, population)

    def independence_check(self, data: Any = None) -> float:
        """Pearson correlation between frequency and mean spend among repeat buyers.

        The Gamma-Gamma model assumes spend is independent of purchase frequency; a correlation
        far from 0 (say beyond +-0.3) means its predictions are biased for heavy or light buyers.

        Examples
        --------
        >>> import pandas as pd
        >>> d = pd.DataFrame({"frequency": [0, 1, 2, 3], "monetary_value": [0.0, 10.0, 20.0, 30.0]})
        >>> round(GammaGamma().independence_check(d), 3)
        1.0
        """
        d, _ = self._data_and_index(data)
        keep = d["frequency"] > 0
        if keep.sum() < 3:
            raise InputError(f"independence_check needs at least 3 repeat buyers, got {int(keep.sum())}")
        return float(np.corrcoef(d["frequency"][keep], d["monetary_value"][keep])[0, 1])
