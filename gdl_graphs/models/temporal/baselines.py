r"""Forecasting baselines without learned weights: last value and historical average.

Same interface as the graph models (``Model(num_nodes, in_channels, out_horizon, edge_index, edge_weight)``,
``forward(x [B, T_in, N, F]) -> [B, T_out, N]``, feature 0 the target); the graph is accepted and unused. They
have no parameters, so a training loop only has to evaluate them (:class:`HistoricalAverage` is fitted with
:meth:`~HistoricalAverage.fit`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.models.temporal.diffusion import check_window
from gdl_graphs.nn.validation import check_positive_ints


class LastValue(nn.Module):
    r"""Persistence forecast: :math:`\hat{y}_{t+h, i} = x_{t, i, 0}` for every horizon :math:`h`.

    Shapes:
        x ``[B, T_in, N, F]`` -> ``[B, T_out, N]``.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, num_nodes: int, in_channels: int, out_horizon: int, edge_index: Tensor | None = None,
                 edge_weight: Tensor | None = None):
        super().__init__()
        check_positive_ints(num_nodes=num_nodes, in_channels=in_channels, out_horizon=out_horizon)
        self.num_nodes, self.in_channels, self.out_horizon = num_nodes, in_channels, out_horizon

    def reset_parameters(self) -> None:
        """Nothing to reset (no parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        check_window(x, self.num_nodes, self.in_channels)
        return x[:, -1:, :, 0].expand(-1, self.out_horizon, -1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_nodes={self.num_nodes}, out_horizon={self.out_horizon})"


class HistoricalAverage(nn.Module):
    r"""Historical average: the mean of the target at the same time-of-day slot over the training series.

    .. math::
        \hat{y}_{t+h, i} = \frac{1}{|\mathcal{S}_i(\tau)|}\sum_{s \in \mathcal{S}_i(\tau)} y_{s, i}, \qquad
        \tau = (\mathrm{slot}(t) + h) \bmod \text{steps\_per\_day},

    where :math:`\mathcal{S}_i(\tau)` are the observed training steps of node :math:`i` in slot :math:`\tau`.
    The slot of the last input step is read from the time-of-day feature ``x[..., time_feature]`` (fraction of
    the day in :math:`[0, 1)`, unscaled, as in DCRNN's data preparation). A slot never observed for a node falls
    back to that node's overall training mean.

    Without a calendar (``steps_per_day=None``), the forecast is the mean of the target over the input window,
    :math:`\hat{y}_{t+h, i} = \frac{1}{T_{in}}\sum_{s} x_{s, i, 0}`: a per-window historical average that needs
    no fitting.

    The fitted table ``[steps_per_day, N]`` is a persistent buffer indexed by node: relabelling the sensors
    needs the table's columns permuted with them (as for any node-identity state).

    Args:
        num_nodes, in_channels, out_horizon, edge_index, edge_weight: the common interface (graph unused).
        steps_per_day: time-of-day slots per day (288 for 5-minute data, 24 for hourly), or ``None``.
        time_feature: index of the time-of-day feature in ``x``.

    Shapes:
        x ``[B, T_in, N, F]`` -> ``[B, T_out, N]``.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, num_nodes: int, in_channels: int, out_horizon: int, edge_index: Tensor | None = None,
                 edge_weight: Tensor | None = None, *, steps_per_day: int | None = None, time_feature: int = 1):
        super().__init__()
        check_positive_ints(num_nodes=num_nodes, in_channels=in_channels, out_horizon=out_horizon)
        check_positive_ints(allow_none=True, steps_per_day=steps_per_day)
        if steps_per_day is not None:
            if not 0 < time_feature < in_channels:
                raise ValueError(f"time_feature={time_feature} must index a feature other than the target "
                                 f"(1..{in_channels - 1}); a calendar needs in_channels >= 2")
        self.num_nodes, self.in_channels, self.out_horizon = num_nodes, in_channels, out_horizon
        self.steps_per_day, self.time_feature = steps_per_day, time_feature
        table = torch.full((steps_per_day, num_nodes), float("nan")) if steps_per_day else None
        self.register_buffer("table", table)  # NaN until fitted

    @property
    def fitted(self) -> bool:
        """Whether the slot table holds fitted values (it travels in the state dict)."""
        return self.table is not None and not bool(torch.isnan(self.table).any())

    @property
    def needs_fit(self) -> bool:
        """Whether :meth:`fit` must run before the model can forecast (a calendar, not fitted yet)."""
        return self.steps_per_day is not None and not self.fitted

    def reset_parameters(self) -> None:
        """Forget the fitted table (no learned parameters)."""
        if self.table is not None:
            self.table.fill_(float("nan"))

    @torch.no_grad()
    def fit(self, series: Tensor, time_of_day: Tensor, mask: Tensor | None = None) -> "HistoricalAverage":
        """Fill the slot table from the training series.

        Args:
            series: ``[T, N]`` target over the training split, in the units the model predicts (scaled).
            time_of_day: ``[T]`` fraction of the day in ``[0, 1)`` of each step.
            mask: ``[T, N]`` bool, ``True`` where a reading is observed (missing readings are left out).
        """
        if self.steps_per_day is None:
            raise ValueError("fit() needs a calendar: build HistoricalAverage with steps_per_day")
        if series.dim() != 2 or series.size(1) != self.num_nodes or series.size(0) == 0:
            raise ValueError(f"series must have shape [steps, {self.num_nodes}], got {list(series.shape)}")
        if time_of_day.shape != (series.size(0),):
            raise ValueError(f"time_of_day must have shape [{series.size(0)}], got {list(time_of_day.shape)}")
        if mask is None:
            mask = torch.isfinite(series)
        elif mask.shape != series.shape:
            raise ValueError(f"mask must have the shape of series {list(series.shape)}, got {list(mask.shape)}")
        mask = mask.bool() & torch.isfinite(series)
        if not bool(mask.any(0).all()):
            raise ValueError("series has a node with no observed training reading; it cannot be averaged")
        values = torch.where(mask, series, torch.zeros_like(series)).to(torch.float64)
        weights = mask.to(torch.float64)
        slots = self._slots(time_of_day)
        totals = torch.zeros(self.steps_per_day, self.num_nodes, dtype=torch.float64).index_add_(0, slots, values)
        counts = torch.zeros_like(totals).index_add_(0, slots, weights)
        overall = values.sum(0) / weights.sum(0)
        table = torch.where(counts > 0, totals / counts.clamp(min=1), overall.expand_as(totals))
        self.table.copy_(table.to(self.table.dtype))
        return self

    def _slots(self, time_of_day: Tensor) -> Tensor:
        return torch.round(time_of_day.to(torch.float64) * self.steps_per_day).long() % self.steps_per_day

    def forward(self, x: Tensor) -> Tensor:
        check_window(x, self.num_nodes, self.in_channels)
        if self.steps_per_day is None:
            return x[..., 0].mean(dim=1, keepdim=True).expand(-1, self.out_horizon, -1)
        if not self.fitted:
            raise RuntimeError("HistoricalAverage with a calendar must be fitted first: call fit(series, "
                               "time_of_day)")
        last = self._slots(x[:, -1, 0, self.time_feature])
        steps = torch.arange(1, self.out_horizon + 1, device=x.device)
        slots = (last.unsqueeze(1) + steps) % self.steps_per_day
        return self.table[slots].to(x.dtype)

    def __repr__(self) -> str:
        mode = f"steps_per_day={self.steps_per_day}" if self.steps_per_day else "window mean"
        return f"{type(self).__name__}(num_nodes={self.num_nodes}, out_horizon={self.out_horizon}, {mode})"
