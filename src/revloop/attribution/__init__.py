"""Attribution: credit conversions to the touches on their paths.

Every model shares one contract (``fit(touchpoints) -> self``,
``credit(conversions) -> credits``) and one registry (``get_model(name, **params)``).
"""

from __future__ import annotations

from revloop.attribution._base import CREDIT_COLUMNS as CREDIT_COLUMNS
from revloop.attribution._base import AttributionModel as AttributionModel
from revloop.attribution._base import get_model as get_model
from revloop.attribution._base import list_models as list_models
from revloop.attribution._base import parse_duration as parse_duration
from revloop.attribution._conversions import conversions_from_crm as conversions_from_crm
from revloop.attribution._conversions import to_reporting_currency as to_reporting_currency
from revloop.attribution._many import credit_many as credit_many
from revloop.attribution._many import summarize as summarize
from revloop.attribution._many import summarize_many as summarize_many
from revloop.attribution._paths import UNATTRIBUTED as UNATTRIBUTED
from revloop.attribution._paths import PathTransform as PathTransform
from revloop.attribution._paths import build_paths as build_paths
from revloop.attribution._performance import performance as performance
from revloop.attribution._rules import RULE_BASED as RULE_BASED
from revloop.attribution._rules import AnchoredModel as AnchoredModel
from revloop.attribution._rules import FirstTouch as FirstTouch
from revloop.attribution._rules import FullPath as FullPath
from revloop.attribution._rules import InverseJShaped as InverseJShaped
from revloop.attribution._rules import JShaped as JShaped
from revloop.attribution._rules import LastNonDirect as LastNonDirect
from revloop.attribution._rules import LastTouch as LastTouch
from revloop.attribution._rules import Linear as Linear
from revloop.attribution._rules import PositionBased as PositionBased
from revloop.attribution._rules import TimeDecay as TimeDecay
from revloop.attribution._rules import UShaped as UShaped
from revloop.attribution._rules import WShaped as WShaped

__all__ = [
    "CREDIT_COLUMNS",
    "RULE_BASED",
    "UNATTRIBUTED",
    "AnchoredModel",
    "AttributionModel",
    "FirstTouch",
    "FullPath",
    "InverseJShaped",
    "JShaped",
    "LastNonDirect",
    "LastTouch",
    "Linear",
    "PathTransform",
    "PositionBased",
    "TimeDecay",
    "UShaped",
    "WShaped",
    "build_paths",
    "conversions_from_crm",
    "credit_many",
    "get_model",
    "list_models",
    "parse_duration",
    "performance",
    "summarize",
    "summarize_many",
    "to_reporting_currency",
]
