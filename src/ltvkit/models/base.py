"""Maximum-likelihood machinery shared by every ltvkit model: fitting, uncertainty, summary, sampling.

A model subclass declares ``param_names``, ``data_columns`` and a vectorised per-row
log-likelihood (optionally its gradient); :class:`BaseModel` does the rest:

* identical data rows are collapsed into weights, so the cost grows with distinct rows;
* the likelihood is maximised over log-parameters with scipy's L-BFGS-B;
* convergence is judged by the gradient norm at the optimum, not by the optimizer's flag;
* standard errors come from the inverse Hessian (Laplace approximation, delta method to the
  natural scale) or from a bootstrap over customers;
* ``summary()``, ``from_params()`` and ``sample_params()`` are the same for every model.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy import optimize

from ltvkit.errors import ConvergenceWarning, FitError, InputError, NotFittedError

Columns = dict[str, np.ndarray]

#: max |d mean-log-likelihood / d log-parameter| accepted as a converged optimum
GRADIENT_TOLERANCE = 1e-4
_MAX_EXAMPLES = 3
#: gradient (mean log-likelihood, log-parameters) at which the optimizer stops
_GTOL = 1e-9
#: above this many distinct rows, a fit starts from a fit to this many sampled customers
WARM_START_ROWS = 20_000


class BaseModel:
    """Base class of the ltvkit models (maximum likelihood over log-parameters).

    Parameters
    ----------
    penalizer : float, default 0
        L2 penalty ``penalizer * sum(params**2)`` added to the mean negative log-likelihood
        (the convention of the lifetimes library). Zero gives the plain maximum-likelihood fit;
        a small value (0.001–0.1) stabilises fits on small or degenerate data sets.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    data_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer

    # ------------------------------------------------------------------ hooks for subclasses
    def _log_likelihood(self, params: np.ndarray, d: Columns) -> np.ndarray:
        """Per-row log-likelihood, ``params`` on the natural scale in ``param_names`` order."""
        raise NotImplementedError

    def _gradient(self, params: np.ndarray, d: Columns) -> np.ndarray | None:
        """Per-row gradient wrt the natural parameters, shape (n, k); ``None`` means numeric.

        Default: from :meth:`_log_likelihood_and_gradient` when a subclass provides that.
        """
        if type(self)._log_likelihood_and_gradient is not BaseModel._log_likelihood_and_gradient:
            return self._log_likelihood_and_gradient(params, d)[1]
        return None

    def _log_likelihood_and_gradient(self, params: np.ndarray, d: Columns
                                     ) -> tuple[np.ndarray, np.ndarray | None]:
        """Both at once; override when they share costly terms (the optimizer asks for both)."""
        return self._log_likelihood(params, d), self._gradient(params, d)

    def _validate(self, d: Columns, index: pd.Index) -> None:
        """Model-specific checks; raise :class:`InputError` naming offending rows."""

    def _prepare(self, d: Columns) -> Any:
        """Data-only precomputation for the likelihood (distinct values and their codes, logs
        of the data...), done once per data set by :meth:`_prepared`; default: ``d`` itself."""
        return d

    def _prepared(self, d: Columns) -> Any:
        """:meth:`_prepare` of ``d``, kept while the optimizer evaluates the same data.

        Keyed on the identity of the dict (which the cache keeps alive, so the identity cannot
        be reused); ``fit`` drops it at the end.
        """
        cached = getattr(self, "_prepared_cache", None)
        if cached is None or cached[0] is not d:
            cached = self._prepared_cache = (d, self._prepare(d))
        return cached[1]

    def _initial_params(self, d: Columns, weights: np.ndarray) -> np.ndarray:
        return np.ones(len(self.param_names))

    def _warm_start(self, d: Columns, weights: np.ndarray, log_start: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``log_start`` refined by a fit to a random subsample of ``WARM_START_ROWS`` customers.

        On large data (more distinct rows than that) the subsample's estimate is within sampling
        error of the full optimum, so the full fit then needs only a few passes over all rows.
        Returns the refined log-parameters and the subsample's mean Hessian (None when the data
        are small enough to fit directly). The subsample is drawn with a fixed seed (fits are
        reproducible).
        """
        if len(weights) <= WARM_START_ROWS:
            return log_start, None
        counts = np.random.default_rng(0).multinomial(WARM_START_ROWS, weights / weights.sum())
        keep = counts > 0
        sub, w_sub = {c: v[keep] for c, v in d.items()}, counts[keep].astype(float)
        log_theta = self._optimize(sub, w_sub, log_start)
        return log_theta, self._log_hessian(log_theta, sub, w_sub) / w_sub.sum()

    def _newton_from_warm_start(self, log_theta: np.ndarray, hessian: np.ndarray | None,
                                d: Columns, w: np.ndarray) -> tuple[np.ndarray, bool]:
        """Quasi-Newton steps on all rows, from the warm start and the subsample's Hessian.

        The subsample's (mean) Hessian is close to the full one, so unit steps converge at once,
        each step's BFGS update (Nocedal & Wright 2006, eq. 6.19) correcting it further: a few
        passes over all rows replace the dozen or more that L-BFGS needs to learn the curvature.
        Stops when the objective no longer decreases (beyond rounding). Returns the point and
        whether its gradient is already below the optimizer's tolerance.
        """
        if hessian is None or not np.all(np.linalg.eigvalsh(hessian) > 0):
            return log_theta, False
        value, grad = self._objective_and_gradient(log_theta, d, w)
        for _ in range(12):
            if np.max(np.abs(grad)) < _GTOL:
                return log_theta, True
            trial = np.clip(log_theta - np.linalg.solve(hessian, grad), -25.0, 25.0)
            trial_value, trial_grad = self._objective_and_gradient(trial, d, w)
            if not trial_value <= value + 1e-15 * abs(value):  # rounding noise near the optimum
                break
            step, change = trial - log_theta, trial_grad - grad
            if change @ step > 1e-12 * np.sqrt((change @ change) * (step @ step)):
                hs = hessian @ step
                hessian = (hessian + np.outer(change, change) / (change @ step)
                           - np.outer(hs, hs) / (step @ hs))
            log_theta, value, grad = trial, trial_value, trial_grad
        return log_theta, False

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        data: pd.DataFrame | Mapping[str, Any],
        weights: np.ndarray | str | None = None,
        *,
        uncertainty: str = "laplace",
        n_boot: int = 100,
        seed: int | None = None,
    ) -> Self:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        data : DataFrame or mapping
            Holds the columns in ``data_columns`` (one row a customer, or a pattern with weights).
        weights : array, column name or None
            Number of customers each row stands for. A column named ``weights`` is used when
            this is None.
        uncertainty : {"laplace", "bootstrap"}
            "laplace" (default) uses the inverse Hessian; "bootstrap" refits on ``n_boot``
            resamples of customers and ``sample_params`` draws from those refits.
        n_boot : int
            Number of bootstrap refits.
        seed : int, optional
            Seed of the bootstrap resampling.

        Returns
        -------
        self
        """
        if uncertainty not in ("laplace", "bootstrap"):
            raise InputError(f"uncertainty must be 'laplace' or 'bootstrap', got {uncertainty!r}")
        if self.penalizer < 0:
            raise InputError(f"penalizer must be >= 0, got {self.penalizer}")
        try:
            return self._fit(data, weights, uncertainty, n_boot, seed)
        finally:
            self._prepared_cache = None  # free the per-fit view of the data

    def _fit(self, data: Any, weights: Any, uncertainty: str, n_boot: int,
             seed: int | None) -> Self:
        d, index = self._extract(data)
        w = self._weights(data, weights, len(index))
        self._train = (d, index)
        du, wu = _collapse(d, w)
        self.n_customers_ = int(round(wu.sum())) if np.allclose(wu, np.round(wu)) else float(wu.sum())
        log_theta, hessian = self._warm_start(du, wu, np.log(self._initial_params(du, wu)))
        log_theta, done = self._newton_from_warm_start(log_theta, hessian, du, wu)
        if not done:
            log_theta = self._optimize(du, wu, log_theta)
        theta = np.exp(log_theta)
        grad = self._objective_gradient(log_theta, du, wu)
        self.gradient_norm_ = float(np.max(np.abs(grad)))
        self.converged_ = bool(self.gradient_norm_ < GRADIENT_TOLERANCE)
        self.params_ = dict(zip(self.param_names, theta.tolist()))
        self.log_likelihood_ = float(np.sum(wu * self._log_likelihood(theta, du)))
        self._bootstrap_draws = None
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge (largest gradient {self.gradient_norm_:.2g} "
                f"> {GRADIENT_TOLERANCE:g}); estimates may be off. Try a small penalizer "
                "(e.g. penalizer=0.01), more data, or check the summary for extreme values.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_covariance(self._log_hessian(log_theta, du, wu), theta)
        if uncertainty == "bootstrap":
            self._bootstrap(du, wu, log_theta, n_boot, seed)
        return self

    def _optimize(self, d: Columns, w: np.ndarray, start: np.ndarray) -> np.ndarray:
        fun = self._objective
        jac = self._objective_gradient
        best = optimize.minimize(
            self._objective_and_gradient, start, args=(d, w), jac=True, method="L-BFGS-B",
            bounds=[(-25.0, 25.0)] * len(start),
            options={"maxiter": 5000, "ftol": 1e-13, "gtol": _GTOL},
        )
        if not np.isfinite(best.fun):
            raise FitError(
                f"{type(self).__name__}: the log-likelihood is not finite at the starting values; "
                "check the data for extreme values"
            )
        if np.max(np.abs(jac(best.x, d, w))) >= GRADIENT_TOLERANCE:
            # polish from where L-BFGS stopped: a derivative-free pass, then BFGS again
            nm = optimize.minimize(fun, best.x, args=(d, w), method="Nelder-Mead",
                                   options={"maxiter": 4000, "xatol": 1e-10, "fatol": 1e-14})
            again = optimize.minimize(fun, nm.x, args=(d, w), jac=jac, method="BFGS",
                                      options={"maxiter": 2000, "gtol": 1e-9})
            best = min((best, nm, again), key=lambda res: res.fun if np.isfinite(res.fun) else np.inf)
        return np.asarray(best.x, dtype=float)

    def _objective(self, log_theta: np.ndarray, d: Columns, w: np.ndarray) -> float:
        """Mean negative log-likelihood plus the penalty (what the optimizer minimises)."""
        theta = np.exp(log_theta)
        with np.errstate(all="ignore"):
            ll = self._log_likelihood(theta, d)
        return self._penalized(ll, theta, w)

    def _penalized(self, ll: np.ndarray, theta: np.ndarray, w: np.ndarray) -> float:
        value = -np.sum(w * ll) / w.sum() + self.penalizer * np.sum(theta**2)
        return float(value) if np.isfinite(value) else np.inf

    def _objective_and_gradient(self, log_theta: np.ndarray, d: Columns,
                                w: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(log_theta)
        with np.errstate(all="ignore"):
            ll, g = self._log_likelihood_and_gradient(theta, d)
        value = self._penalized(ll, theta, w)
        if g is None:
            return value, _central_gradient(lambda x: self._objective(x, d, w), log_theta)
        grad_natural = -np.einsum("i,ij->j", w, g) / w.sum() + 2.0 * self.penalizer * theta
        return value, grad_natural * theta  # chain rule: d/dlog(theta) = theta * d/dtheta

    def _objective_gradient(self, log_theta: np.ndarray, d: Columns, w: np.ndarray) -> np.ndarray:
        return self._objective_and_gradient(log_theta, d, w)[1]

    def _log_hessian(self, log_theta: np.ndarray, d: Columns, w: np.ndarray) -> np.ndarray:
        """Hessian of the total penalized negative log-likelihood wrt log-parameters.

        Central differences of the (analytic, where given) gradient: 2k gradient evaluations.
        """
        k = len(log_theta)
        step = 1e-4
        h = np.empty((k, k))
        for j in range(k):
            e = np.zeros(k)
            e[j] = step
            h[:, j] = (self._objective_gradient(log_theta + e, d, w)
                       - self._objective_gradient(log_theta - e, d, w)) / (2 * step)
        return 0.5 * (h + h.T) * w.sum()

    def _set_covariance(self, hessian: np.ndarray, theta: np.ndarray) -> None:
        eigval, eigvec = np.linalg.eigh(hessian)
        if not np.all(np.isfinite(eigval)) or eigval[0] <= 1e-9 * max(abs(eigval[-1]), 1.0):
            worst = self.param_names[int(np.argmax(np.abs(eigvec[:, 0])))]
            raise FitError(
                f"{type(self).__name__}: parameter {worst!r} is not identified by these data "
                "(the likelihood is flat in its direction, e.g. when no customer made a repeat "
                "purchase). Use more data with repeat purchases, or a penalizer such as 0.01."
            )
        cov_log = np.linalg.inv(hessian)
        self._cov_log = cov_log
        jac = np.diag(theta)
        cov = jac @ cov_log @ jac  # delta method to the natural scale
        self.covariance_ = pd.DataFrame(cov, index=self.param_names, columns=self.param_names)
        self.standard_errors_ = dict(zip(self.param_names, np.sqrt(np.diag(cov)).tolist()))

    def _bootstrap(self, d: Columns, w: np.ndarray, log_theta: np.ndarray, n_boot: int,
                   seed: int | None) -> None:
        rng = np.random.default_rng(seed)
        n = int(round(w.sum()))
        draws = []
        for _ in range(n_boot):  # resampling customers = multinomial counts over distinct rows
            wb = rng.multinomial(n, w / w.sum()).astype(float)
            keep = wb > 0
            db = {c: v[keep] for c, v in d.items()}
            draws.append(np.exp(self._optimize(db, wb[keep], log_theta)))
        self._bootstrap_draws = np.array(draws)
        cov = np.atleast_2d(np.cov(self._bootstrap_draws, rowvar=False))
        self.covariance_ = pd.DataFrame(cov, index=self.param_names, columns=self.param_names)
        self.standard_errors_ = dict(zip(self.param_names, np.sqrt(np.diag(cov)).tolist()))

    # ------------------------------------------------------------------ construction and reporting
    @classmethod
    def from_params(cls, covariance: np.ndarray | pd.DataFrame | None = None, **params: float) -> Self:
        """Build a model with known parameters (no fitting).

        ``covariance`` (natural scale, ``param_names`` order) is optional; without it the model
        has no parameter uncertainty and predictions cannot take ``interval=``.
        """
        missing = [p for p in cls.param_names if p not in params]
        extra = [p for p in params if p not in cls.param_names]
        if missing or extra:
            raise InputError(
                f"{cls.__name__}.from_params needs exactly {', '.join(cls.param_names)}; "
                f"missing: {missing or 'none'}, unknown: {extra or 'none'}"
            )
        bad = {p: v for p, v in params.items() if not (np.isfinite(v) and v > 0)}
        if bad:
            raise InputError(f"{cls.__name__} parameters must be positive and finite, got {bad}")
        model = cls()
        theta = np.array([float(params[p]) for p in cls.param_names])
        model.params_ = dict(zip(cls.param_names, theta.tolist()))
        model.converged_ = True
        model.log_likelihood_ = float("nan")
        model.n_customers_ = 0
        model._train = None
        model._bootstrap_draws = None
        if covariance is None:
            model.standard_errors_ = {p: float("nan") for p in cls.param_names}
            model._cov_log = None
        else:
            cov = np.asarray(covariance, dtype=float)
            model.covariance_ = pd.DataFrame(cov, index=cls.param_names, columns=cls.param_names)
            model.standard_errors_ = dict(zip(cls.param_names, np.sqrt(np.diag(cov)).tolist()))
            inv = np.diag(1.0 / theta)
            model._cov_log = inv @ cov @ inv
        return model

    @property
    def _params(self) -> np.ndarray:
        if not hasattr(self, "params_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call .fit(data) or "
                f"{type(self).__name__}.from_params(...) first"
            )
        return np.array([self.params_[p] for p in self.param_names])

    def summary(self) -> pd.DataFrame:
        """Parameter table: estimate, standard error and 95% interval.

        The interval is computed on the log scale and transformed back, so it stays positive.
        ``attrs`` carries the log-likelihood, convergence and number of customers.
        """
        theta = self._params
        se = np.array([self.standard_errors_[p] for p in self.param_names])
        if self._bootstrap_draws is not None:
            low, high = np.quantile(self._bootstrap_draws, [0.025, 0.975], axis=0)
        else:
            se_log = np.sqrt(np.diag(self._cov_log)) if self._cov_log is not None else np.nan
            low, high = theta * np.exp(-1.96 * se_log), theta * np.exp(1.96 * se_log)
        table = pd.DataFrame(
            {"estimate": theta, "std_error": se, "lower_95": low, "upper_95": high},
            index=pd.Index(self.param_names, name="parameter"),
        )
        table.attrs.update(
            model=type(self).__name__, log_likelihood=self.log_likelihood_,
            converged=self.converged_, n_customers=self.n_customers_,
            uncertainty="bootstrap" if self._bootstrap_draws is not None else "laplace",
        )
        return table

    def __str__(self) -> str:
        if not hasattr(self, "params_"):
            return f"<{type(self).__name__} (not fitted)>"
        table = self.summary()
        head = (
            f"{type(self).__name__} · {self.n_customers_:,} customers · "
            f"log-likelihood {self.log_likelihood_:,.1f} · "
            f"{'converged' if self.converged_ else 'NOT converged'} · "
            f"95% interval from {table.attrs['uncertainty']}"
        )
        return head + "\n" + table.to_string(float_format=lambda v: f"{v:.4g}")

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"<{type(self).__name__} (not fitted)>"
        values = " ".join(f"{p}={_short(v)}" for p, v in self.params_.items())
        tail = f" · {self.n_customers_:,} customers · LL {self.log_likelihood_:.1f}" if self.n_customers_ else ""
        return f"<{type(self).__name__} {values}{tail}>".replace("-", "\u2212")

    # ------------------------------------------------------------------ uncertainty
    def sample_params(self, n: int, seed: int | None = None) -> np.ndarray:
        """Draws of the parameters reflecting estimation uncertainty, shape (n, k).

        From the Laplace approximation (multivariate normal on the log scale) or, after
        ``fit(uncertainty="bootstrap")``, from the bootstrap refits.
        """
        theta = self._params
        rng = np.random.default_rng(seed)
        if self._bootstrap_draws is not None:
            return self._bootstrap_draws[rng.integers(0, len(self._bootstrap_draws), size=n)]
        if getattr(self, "_cov_log", None) is None:
            raise InputError(
                f"this {type(self).__name__} has no parameter uncertainty (built with from_params "
                "without covariance=): fit it on data, or pass covariance= to from_params"
            )
        return np.exp(rng.multivariate_normal(np.log(theta), self._cov_log, size=n))

    # ------------------------------------------------------------------ data and prediction helpers
    def _columns(self, data: pd.DataFrame | Mapping[str, Any] | None = None) -> Columns:
        return self._data_and_index(data)[0]

    def _data_and_index(self, data: Any) -> tuple[Columns, pd.Index]:
        if data is None:
            if getattr(self, "_train", None) is None:
                raise NotFittedError(
                    f"this {type(self).__name__} has no training data (built with from_params or "
                    "not fitted): pass data="
                )
            return self._train
        return self._extract(data)

    def _predict(self, fn: Callable[..., np.ndarray], data: Any = None,
                 interval: float | None = None, n_draws: int = 200, seed: int | None = 0,
                 **kwargs: Any) -> pd.Series | pd.DataFrame:
        """Evaluate ``fn(params, columns, **kwargs)`` per customer.

        Without ``interval``: a Series (index = customers). With ``interval`` (e.g. 0.9): a
        DataFrame with ``mean``, ``low``, ``high`` over parameter draws (parameter uncertainty).
        Customers sharing their data (and per-customer arguments) share the answer, so ``fn`` is
        evaluated once per distinct row and the result mapped back.
        """
        d, index = self._data_and_index(data)
        per_row = {k: np.broadcast_to(v, len(index)) for k, v in kwargs.items() if np.ndim(v)}
        codes, first = _row_codes({**d, **per_row})
        d = {c: v[first] for c, v in d.items()}
        kwargs = {**kwargs, **{k: v[first] for k, v in per_row.items()}}
        if interval is None:
            out = np.broadcast_to(fn(self._params, d, **kwargs), len(first))
            return pd.Series(out[codes], index=index)
        values = np.stack([np.broadcast_to(fn(p, d, **kwargs), len(first))
                           for p in self._draws(interval, n_draws, seed)])
        return _interval_frame(values[:, codes], interval, index)

    def _predict_new(self, fn: Callable[..., np.ndarray], t: Any, interval: float | None = None,
                     n_draws: int = 200, seed: int | None = 0, **kwargs: Any) -> Any:
        """Like :meth:`_predict` for a customer just acquired: ``fn(params, t, **kwargs)``."""
        if interval is None:
            out = fn(self._params, np.asarray(t, dtype=float), **kwargs)
            return float(out) if np.ndim(out) == 0 else out
        t_arr = np.atleast_1d(np.asarray(t, dtype=float))
        values = np.stack([np.broadcast_to(fn(p, t_arr, **kwargs), t_arr.shape)
                           for p in self._draws(interval, n_draws, seed)])
        return _interval_frame(values, interval, pd.Index(t_arr, name="t"))

    def _draws(self, interval: float, n_draws: int, seed: int | None) -> np.ndarray:
        if not 0 < interval < 1:
            raise InputError(f"interval must be between 0 and 1 (e.g. 0.9), got {interval}")
        return self.sample_params(n_draws, seed)

    def _extract(self, data: Any) -> tuple[Columns, pd.Index]:
        if isinstance(data, Mapping) and not isinstance(data, pd.DataFrame):
            data = pd.DataFrame(dict(data))
        if not isinstance(data, pd.DataFrame):
            raise InputError(
                f"{type(self).__name__} expects a DataFrame with columns "
                f"{', '.join(self.data_columns)}; got {type(data).__name__}"
            )
        missing = [c for c in self.data_columns if c not in data.columns]
        if missing:
            raise InputError(
                f"{type(self).__name__} needs column(s) {', '.join(missing)}; the data has "
                f"{', '.join(map(str, data.columns))}. Build it with ltvkit.rfm_summary()."
            )
        d: Columns = {}
        for c in self.data_columns:
            try:
                d[c] = data[c].to_numpy(dtype=float)
            except (TypeError, ValueError) as exc:
                raise InputError(f"column {c!r} must be numeric ({exc})") from None
        index = data.index
        for c, v in d.items():
            _check_rows(~np.isfinite(v), index, f"{c} is missing or not finite", d, c)
            _check_rows(v < 0, index, f"{c} is negative", d, c)
        self._validate(d, index)
        return d, index

    def _weights(self, data: Any, weights: Any, n: int) -> np.ndarray:
        if weights is None and isinstance(data, pd.DataFrame | Mapping) and "weights" in data:
            weights = "weights"
        if weights is None:
            return np.ones(n)
        w = np.asarray(data[weights] if isinstance(weights, str) else weights, dtype=float)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise InputError(
                f"weights must be {n} finite non-negative numbers with a positive sum "
                "(the number of customers each row stands for)"
            )
        return w


class PurchaseModel(BaseModel):
    """Base of the repeat-purchase models: data are ``frequency``, ``recency``, ``T`` per customer."""

    data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")

    def _validate(self, d: Columns, index: pd.Index) -> None:
        x, tx, T = d["frequency"], d["recency"], d["T"]
        _check_rows(x != np.round(x), index, "frequency is not a whole number", d, "frequency")
        _check_rows(tx > T * (1 + 1e-9) + 1e-9, index,
                    "recency > T (the last purchase is after the end of observation)", d, "recency")
        _check_rows((x > 0) & (tx <= 0), index,
                    "frequency > 0 but recency == 0 (repeat purchases need a positive recency)",
                    d, "recency")
        _check_rows(T <= 0, index, "T must be positive (time since the first purchase)", d, "T")

    # Public predictions. Each model implements the hooks ``_p_alive(params, d)``,
    # ``_p_alive_at(params, d, t)``, ``_expected_purchases(params, d, t)``,
    # ``_purchase_probability(params, d, n, t)``, ``_expected_purchases_new(params, t)`` and
    # ``_wait_quantiles``, whose docstrings give the model's formulas.
    def p_alive(self, data: Any = None, interval: float | None = None) -> pd.Series | pd.DataFrame:
        """Probability that each customer is still alive (has not dropped out) at the end.

        Parameters
        ----------
        data : DataFrame, optional
            ``frequency``, ``recency``, ``T`` per customer (None = the training data).
        interval : float, optional
            E.g. 0.9: a DataFrame with ``mean``, ``low``, ``high`` over parameter draws
            (parameter uncertainty) instead of a Series.

        Returns
        -------
        Series indexed like ``data`` (or DataFrame with ``interval``). The formula is the model's
        ``_p_alive`` (BG/BB: alive at the next opportunity).
        """
        return self._predict(self._p_alive, data, interval)

    def p_alive_at(self, t: Any, data: Any = None,
                   interval: float | None = None) -> pd.Series | pd.DataFrame:
        """Probability that each customer is alive ``t`` time units after the end of observation.

        ``t`` is in the model's time unit (BG/BB: whole opportunities), a scalar or one value per
        customer; ``data`` and ``interval`` as in :meth:`p_alive`. Formula: the model's
        ``_p_alive_at``.
        """
        return self._predict(self._p_alive_at, data, interval, t=self._time_arg(t))

    def expected_purchases(self, t: Any, data: Any = None,
                           interval: float | None = None) -> pd.Series | pd.DataFrame:
        """Expected number of purchases of each customer in ``(T, T + t]`` given their history.

        ``t`` is in the model's time unit (BG/BB: whole opportunities), a scalar or one value per
        customer; ``data`` and ``interval`` as in :meth:`p_alive`. Formula: the model's
        ``_expected_purchases``.
        """
        return self._predict(self._expected_purchases, data, interval, t=self._time_arg(t))

    def purchase_probability(self, n: Any, t: Any, data: Any = None) -> pd.Series:
        """Probability that each customer makes exactly ``n`` purchases in ``(T, T + t]``.

        ``n`` (whole number) and ``t`` are scalars or one value per customer; ``data`` as in
        :meth:`p_alive`. Formula: the model's ``_purchase_probability``.
        """
        return self._predict(self._purchase_probability, data, None, n=self._count_arg(n),
                             t=self._time_arg(t))

    def expected_purchases_new(self, t: Any, interval: float | None = None) -> Any:
        """Expected repeat purchases of a just-acquired customer in ``(0, t]``.

        ``t`` a scalar (float returned) or an array; with ``interval`` a DataFrame indexed by
        ``t``.
        Formula: the model's ``_expected_purchases_new``.
        """
        return self._predict_new(self._expected_purchases_new, self._time_arg(t), interval)

    @staticmethod
    def _time_arg(t: Any) -> np.ndarray:
        return _times(t)

    @staticmethod
    def _count_arg(n: Any) -> np.ndarray:
        return _counts(n)

    def next_purchase_time(self, data: Any = None, q: Sequence[float] = (0.1, 0.5, 0.9),
                           given_alive: bool = False) -> pd.DataFrame:
        """Quantiles of the waiting time from ``T`` to each customer's next purchase.

        Parameters
        ----------
        data : DataFrame, optional
            ``frequency``, ``recency``, ``T`` per customer (None = the training data).
        q : sequence of float
            Quantile levels, strictly between 0 and 1.
        given_alive : bool, default False
            False: the wait of the customer as observed, who may have dropped out already; the
            probability of ever buying again is then below one, and a quantile above it is never
            reached (``+inf``). True: the wait of the customer supposing they are still alive at
            ``T`` (P(alive) set to one) — the window in which to reach out to a customer who has
            not left. It is still ``+inf`` in models where an alive customer may drop out before
            the next purchase (Pareto/NBD, BG/BB) when ``q`` exceeds the chance of buying again.

        Returns
        -------
        DataFrame
            One column per level ("q10", "q50", "q90" for the default ``q``), in the model's time
            unit (BG/BB: opportunities), index = customers. The formulas are in the model's
            ``_wait_quantiles`` docstring; customers with the same history share the computation.
        """
        qs = _quantile_levels(q)
        d, index = self._data_and_index(data)
        codes, first = _row_codes(d)
        distinct = {c: v[first] for c, v in d.items()}
        alive = np.ones(len(first)) if given_alive else self._alive_now(self._params, distinct)
        out = self._wait_quantiles(self._params, distinct, qs, alive)[codes]
        names = [f"q{100 * v:g}".replace(".", "_") for v in qs]
        return pd.DataFrame(out, index=index, columns=names)

    def _alive_now(self, params: np.ndarray, d: Columns) -> np.ndarray:
        """P(alive at T | history), which scales the waiting-time distribution (1 if given alive)."""
        return self._p_alive(params, d)

    def _wait_quantiles(self, params: np.ndarray, d: Columns, qs: np.ndarray,
                        alive: np.ndarray) -> np.ndarray:
        """Quantiles ``qs`` of the wait of customers alive at T with probability ``alive``.

        Shape (rows, len(qs)); ``+inf`` where a level is never reached.
        """
        raise NotImplementedError


def _quantile_levels(q: Any) -> np.ndarray:
    """Quantile levels as an array, checked to be strictly between 0 and 1."""
    qs = np.atleast_1d(np.asarray(q, dtype=float))
    if qs.ndim != 1 or not np.all((qs > 0) & (qs < 1)):
        raise InputError(
            f"quantile levels q must be strictly between 0 and 1, e.g. q=(0.1, 0.5, 0.9); got {q!r}"
        )
    return qs


def _times(t: Any) -> np.ndarray:
    """A time span argument as an array, checked finite and >= 0."""
    arr = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InputError(f"t must be finite and >= 0 (a time span in the data's unit), got {t!r}")
    return arr


def _counts(n: Any) -> np.ndarray:
    """A number-of-purchases argument as an array, checked to be whole numbers >= 0."""
    arr = np.asarray(n, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise InputError(f"n must be a whole number of purchases >= 0, got {n!r}")
    return arr


# ---------------------------------------------------------------------- module helpers
def _check_rows(bad: np.ndarray, index: pd.Index, what: str, d: Columns, column: str) -> None:
    """Raise InputError naming the first offending rows when ``bad`` has any True."""
    if not np.any(bad):
        return
    where = np.flatnonzero(bad)
    examples = "; ".join(
        f"customer {index[i]!r} (row {i}): "
        + ", ".join(f"{c}={d[c][i]:g}" for c in d)
        for i in where[:_MAX_EXAMPLES]
    )
    raise InputError(
        f"{len(where):,} row(s) where {what} — column {column!r}; e.g. {examples}. "
        "Fix or remove these rows (ltvkit.rfm_summary builds consistent summaries)."
    )


def _collapse(d: Columns, w: np.ndarray) -> tuple[Columns, np.ndarray]:
    """Merge identical rows, summing their weights (cost then grows with distinct rows)."""
    key, representative = _row_codes(d, len(w))
    sums = np.bincount(key, weights=w, minlength=len(representative))
    keep = sums > 0
    return {c: v[representative[keep]] for c, v in d.items()}, sums[keep]


def per_distinct(fn: Callable[..., np.ndarray], *args: Any) -> np.ndarray:
    """``fn(*args)`` evaluated once per distinct combination of the (broadcast) arguments.

    For costly per-customer formulas whose arguments repeat a lot (frequencies, ages in whole
    days, one horizon): the cost grows with the distinct combinations, not the customers.

    Examples
    --------
    >>> per_distinct(lambda x, t: x * t, np.array([1.0, 2.0, 1.0]), 3.0).tolist()
    [3.0, 6.0, 3.0]
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in args))
    codes, first = _row_codes({i: a.ravel() for i, a in enumerate(arrays)})
    return np.asarray(fn(*(a.ravel()[first] for a in arrays)))[codes].reshape(arrays[0].shape)


def _row_codes(d: Columns, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Code of each row's distinct combination of values in ``d``, and one row per code.

    Hash-based and linear: each column is coded, and the codes are combined into one integer row
    key (re-coded to 0..groups-1 at the end, or earlier if it could overflow).
    ``d[c][first][codes]`` gives back ``d[c]``.
    """
    key = np.zeros(len(next(iter(d.values()))) if n is None else n, dtype=np.int64)
    size = 1  # number of possible key values
    for values in d.values():
        codes, uniques = pd.factorize(values)
        if size * max(len(uniques), 1) >= 2**62:  # re-code before the key could overflow
            key, size = _recode(key)
        key, size = key * len(uniques) + codes, size * max(len(uniques), 1)
    key, _ = _recode(key)
    groups = int(key.max()) + 1 if len(key) else 0
    first = np.empty(groups, dtype=np.int64)
    first[key] = np.arange(len(key))  # rows sharing a key are identical: any one will do
    return key, first


def _recode(key: np.ndarray) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(key)
    return codes.astype(np.int64), max(len(uniques), 1)


def _central_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, step: float = 1e-6) -> np.ndarray:
    g = np.empty_like(x)
    for j in range(len(x)):
        e = np.zeros_like(x)
        e[j] = step
        g[j] = (f(x + e) - f(x - e)) / (2 * step)
    return g


def _interval_frame(values: np.ndarray, interval: float, index: pd.Index) -> pd.DataFrame:
    tail = (1 - interval) / 2
    low, high = np.quantile(values, [tail, 1 - tail], axis=0)
    frame = pd.DataFrame({"mean": values.mean(axis=0), "low": low, "high": high}, index=index)
    frame.attrs["uncertainty"] = f"parameter uncertainty ({interval:.0%} interval)"
    return frame


def _short(v: float) -> str:
    return f"{v:.3g}" if v < 1000 else f"{v:,.0f}"
