"""Touchpoints: sessions, traffic sources and channels of web events (compute layer).

- :func:`sessionize` rebuilds sessions with window functions;
- :func:`derive_source_medium` reads UTM tags, click ids and the referrer;
- :func:`classify_channel` applies a versioned, declarative channel rule set
  (:data:`GA4_RULES`, :data:`VELIR_RULES`, :data:`SNOWPLOW_RULES` or your own);
- :func:`from_events` puts them together into canonical ``touchpoints``.

Every function returns an unexecuted :class:`ibis.Table`.
"""

from __future__ import annotations

from revloop.touchpoints._channels import channel_expr as channel_expr
from revloop.touchpoints._channels import classify_channel as classify_channel
from revloop.touchpoints._from_events import from_events as from_events
from revloop.touchpoints._from_events import resolve_identities as resolve_identities
from revloop.touchpoints._rules import GA4_RULES as GA4_RULES
from revloop.touchpoints._rules import SNOWPLOW_RULES as SNOWPLOW_RULES
from revloop.touchpoints._rules import SOURCE_CATEGORIES as SOURCE_CATEGORIES
from revloop.touchpoints._rules import VELIR_RULES as VELIR_RULES
from revloop.touchpoints._rules import AllOf as AllOf
from revloop.touchpoints._rules import AnyOf as AnyOf
from revloop.touchpoints._rules import Condition as Condition
from revloop.touchpoints._rules import Rule as Rule
from revloop.touchpoints._rules import RuleSet as RuleSet
from revloop.touchpoints._rules import load_source_categories as load_source_categories
from revloop.touchpoints._sessions import sessionize as sessionize
from revloop.touchpoints._sources import CLICK_ID_SOURCES as CLICK_ID_SOURCES
from revloop.touchpoints._sources import SEARCH_ENGINES as SEARCH_ENGINES
from revloop.touchpoints._sources import WEAK_CLICK_ID_SOURCES as WEAK_CLICK_ID_SOURCES
from revloop.touchpoints._sources import derive_source_medium as derive_source_medium
from revloop.touchpoints._sources import referrer_host as referrer_host

__all__ = [
    "CLICK_ID_SOURCES",
    "GA4_RULES",
    "SEARCH_ENGINES",
    "SNOWPLOW_RULES",
    "SOURCE_CATEGORIES",
    "VELIR_RULES",
    "WEAK_CLICK_ID_SOURCES",
    "AllOf",
    "AnyOf",
    "Condition",
    "Rule",
    "RuleSet",
    "channel_expr",
    "classify_channel",
    "derive_source_medium",
    "from_events",
    "load_source_categories",
    "referrer_host",
    "resolve_identities",
    "sessionize",
]
