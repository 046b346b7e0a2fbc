"""Identity: stitch anonymous visitor ids to people (compute layer).

:func:`stitch` turns web events and leads into the canonical ``identities``
table (one person per anonymous id; one person may have many anonymous ids),
which :func:`revloop.touchpoints.from_events` uses to credit every visit of a
device, before and after the form fill, to the person.
"""

from __future__ import annotations

from revloop.identity._stitch import CRM_ID_PROPERTIES as CRM_ID_PROPERTIES
from revloop.identity._stitch import METHODS as METHODS
from revloop.identity._stitch import Conflict as Conflict
from revloop.identity._stitch import Method as Method
from revloop.identity._stitch import stitch as stitch

__all__ = ["CRM_ID_PROPERTIES", "METHODS", "Conflict", "Method", "stitch"]
