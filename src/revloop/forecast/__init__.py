"""Predictable revenue: the planner, lead probabilities, and the pipeline forecast.

:func:`plan_inputs` (Ibis, unexecuted) describes the history the planner needs; the
edge layer fetches it (``PlanInputs.from_frames``) and :func:`plan` works back from
revenue targets to the leads, opportunities and deals they need, month by month, with
their uncertainty. :func:`lead_probability` gives each open lead its probability of
converting within a horizon. User documentation: ``docs/planning.md``.

:func:`snapshots` rebuilds the open pipeline as of past dates from ``stage_history``;
the forecasters (:func:`get_forecaster`: ``stage_weighted``, ``stage_conversion``,
``calibrated_gbm``) give each open deal P(won before the period's end); :func:`forecast`
and :func:`backtest` turn them into period totals with P10 / P50 / P90 and score them on
past periods. User documentation: ``docs/forecasting.md``.
"""

from __future__ import annotations

from revloop.forecast._backtest import BacktestData as BacktestData
from revloop.forecast._backtest import BacktestResult as BacktestResult
from revloop.forecast._backtest import Forecast as Forecast
from revloop.forecast._backtest import PeriodForecast as PeriodForecast
from revloop.forecast._backtest import backtest as backtest
from revloop.forecast._backtest import backtest_dates as backtest_dates
from revloop.forecast._backtest import deal_scores as deal_scores
from revloop.forecast._backtest import forecast as forecast
from revloop.forecast._backtest import forecast_period as forecast_period
from revloop.forecast._backtest import reliability as reliability
from revloop.forecast._forecasters import Forecaster as Forecaster
from revloop.forecast._forecasters import TrainingSet as TrainingSet
from revloop.forecast._forecasters import get_forecaster as get_forecaster
from revloop.forecast._forecasters import list_forecasters as list_forecasters
from revloop.forecast._lead_probability import lead_probability as lead_probability
from revloop.forecast._plan_inputs import (
    PREDICTABLE_REVENUE_SEGMENTS as PREDICTABLE_REVENUE_SEGMENTS,
)
from revloop.forecast._plan_inputs import PlanQueries as PlanQueries
from revloop.forecast._plan_inputs import plan_inputs as plan_inputs
from revloop.forecast._planner import Capacity as Capacity
from revloop.forecast._planner import ExpansionCredit as ExpansionCredit
from revloop.forecast._planner import Plan as Plan
from revloop.forecast._planner import PlanInputs as PlanInputs
from revloop.forecast._planner import Prior as Prior
from revloop.forecast._planner import TargetPeriod as TargetPeriod
from revloop.forecast._planner import parse_period as parse_period
from revloop.forecast._planner import plan as plan
from revloop.forecast._planner import reverse_funnel as reverse_funnel
from revloop.forecast._snapshots import FEATURES as FEATURES
from revloop.forecast._snapshots import LABELS as LABELS
from revloop.forecast._snapshots import snapshot_dates as snapshot_dates
from revloop.forecast._snapshots import snapshots as snapshots
from revloop.forecast._snapshots import stage_moves as stage_moves
from revloop.forecast._snapshots import won_deals as won_deals

__all__ = [
    "FEATURES",
    "LABELS",
    "PREDICTABLE_REVENUE_SEGMENTS",
    "BacktestData",
    "BacktestResult",
    "Capacity",
    "ExpansionCredit",
    "Forecast",
    "Forecaster",
    "PeriodForecast",
    "Plan",
    "PlanInputs",
    "PlanQueries",
    "Prior",
    "TargetPeriod",
    "TrainingSet",
    "backtest",
    "backtest_dates",
    "deal_scores",
    "forecast",
    "forecast_period",
    "get_forecaster",
    "lead_probability",
    "list_forecasters",
    "parse_period",
    "plan",
    "plan_inputs",
    "reliability",
    "reverse_funnel",
    "snapshot_dates",
    "snapshots",
    "stage_moves",
    "won_deals",
]
