"""The self-contained HTML report (edge layer: runs queries, writes files).

:func:`collect` runs every query the report needs and keeps the small results in
a :class:`ReportData`; :func:`render_html` turns it into one HTML document with
Plotly inlined (it opens offline); :func:`write_html` writes it to a file.
:func:`collect_revops` computes every RevOps and subscription metric and
:func:`revops_sections` turns them into report sections (``ReportData.sections``).
:func:`collect_forecast` makes the next period's plan, the current period's forecast and
the backtest of the forecasters; :func:`forecast_sections` turns them into sections.

Examples
--------
>>> import revloop
>>> from revloop import report
>>> con = revloop.connect()
>>> data = report.collect(con, touchpoints=tp, conversions=cv, spend=sp)  # doctest: +SKIP
>>> report.write_html(data, "report.html")  # doctest: +SKIP
"""

from __future__ import annotations

from revloop.report._collect import ReportData as ReportData
from revloop.report._collect import Section as Section
from revloop.report._collect import collect as collect
from revloop.report._forecast import ForecastData as ForecastData
from revloop.report._forecast import collect_forecast as collect_forecast
from revloop.report._forecast import forecast_sections as forecast_sections
from revloop.report._render import render_html as render_html
from revloop.report._render import write_html as write_html
from revloop.report._revops import RevOpsData as RevOpsData
from revloop.report._revops import collect_revops as collect_revops
from revloop.report._revops import revops_sections as revops_sections

__all__ = [
    "ForecastData",
    "ReportData",
    "RevOpsData",
    "Section",
    "collect",
    "collect_forecast",
    "collect_revops",
    "forecast_sections",
    "render_html",
    "revops_sections",
    "write_html",
]
