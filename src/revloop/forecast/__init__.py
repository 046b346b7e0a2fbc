"""Predictable revenue: the planner (reverse funnel from a target) and lead probabilities.

:func:`plan_inputs` (Ibis, unexecuted) describes the history the planner needs; the
edge layer fetches it (``PlanInputs.from_frames``) and :func:`plan` works back from
revenue targets to the leads, opportunities and deals they need, month by month, with
their uncertainty. :func:`lead_probability` gives each open lead its probability of
converting within a horizon. User documentation: ``docs/planning.md``.
"""

from __future__ import annotations

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

__all__ = [
    "PREDICTABLE_REVENUE_SEGMENTS",
    "Capacity",
    "ExpansionCredit",
    "Plan",
    "PlanInputs",
    "PlanQueries",
    "Prior",
    "TargetPeriod",
    "lead_probability",
    "parse_period",
    "plan",
    "plan_inputs",
    "reverse_funnel",
]
