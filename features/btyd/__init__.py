"""Buy-till-you-die features for non-contractual customers: BG/NBD and Gamma-Gamma, numpy/scipy only.

From the orders strictly before the cutoff, each customer's purchase history is summarised the
way ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D")`` does, in **days**:

- ``frequency`` x: repeat purchases = distinct calendar days with an order, minus one;
- ``recency`` t_x: days from the first to the last purchase day;
- ``age`` T: days from the first purchase day to the cutoff's calendar day;
- ``monetary`` m: mean amount of the repeat purchase days (amounts of one day summed, the first
  day left out); NaN for a customer without repeat purchases.

Two models are fitted on those summaries, once per call of :func:`add_btyd`:

- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): parameters
  (r, alpha, a, b), alpha in days; P(alive) and the expected number of purchase days in the next
  ``h`` days given the history.
- Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"; Hardie's note 025): parameters (p, q, v),
  v in currency; the expected mean order value given the history, fitted on repeat buyers only.

Both maximise the mean log-likelihood over log-parameters (bounded truncated Newton, TNC,
with the exact gradient) minus ``penalizer * sum(params ** 2)``, the L2 term of lifetimes' ``penalizer_coef``:
for BG/NBD it acts, as in lifetimes, on the parameters in the fit's time scale (oldest customer's
age = 1), so the same coefficient means the same thing; for Gamma-Gamma on parameters with money
scaled by the mean order value (lifetimes uses the raw currency, which only matters when the
penalizer is not 0). Above ``fit_sample`` customers the fit uses a random subsample of that many
(fixed seed); identical histories are counted once with a weight, and terms of the likelihood
that depend on the number of repeat purchases alone are computed once per distinct number.
Predictions are made for every customer.

Data that cannot identify a model (no orders, no or too few repeat buyers, identical histories,
a parameter at its bound, no convergence) raise :class:`BtydFitError` from the fit functions;
:func:`add_btyd` logs a warning and writes NaN columns instead.
"""

from features.btyd.base import (
    BgNbdParams,
    BtydConfig,
    BtydFitError,
    GammaGammaParams,
    PurchaseSummary,
)
from features.btyd.bgnbd import expected_orders, fit_bgnbd, p_alive
from features.btyd.gamma_gamma import expected_order_value, fit_gamma_gamma
from features.btyd.summary import summarise

__all__ = ["BgNbdParams", "BtydConfig", "BtydFitError", "GammaGammaParams", "PurchaseSummary",
           "expected_order_value", "expected_orders", "fit_bgnbd", "fit_gamma_gamma", "p_alive",
           "summarise"]
