"""revloop: closed-loop B2B revenue attribution, RevOps vital signs and predictable revenue.

>>> import revloop
>>> con = revloop.connect()                              # in-memory DuckDB
>>> company = revloop.synthetic.demo_company(con, seed=7, n_people=2_000)
>>> loop = revloop.closed_loop(company.tables())         # identities, touchpoints, conversions
>>> model = revloop.attribution.get_model("w_shaped").fit(loop.touchpoints)
>>> credits = model.credit(loop.conversions)
>>> by_channel = revloop.attribution.summarize(credits, by="channel")
>>> sorted(revloop.execute(by_channel).columns)
['channel', 'conversions', 'kind', 'model', 'value']
"""

from __future__ import annotations

from revloop import attribution as attribution
from revloop import engine as engine
from revloop import forecast as forecast
from revloop import identity as identity
from revloop import ingest as ingest
from revloop import metrics as metrics
from revloop import report as report
from revloop import schema as schema
from revloop import synthetic as synthetic
from revloop import touchpoints as touchpoints
from revloop._pipeline import ClosedLoop as ClosedLoop
from revloop._pipeline import closed_loop as closed_loop
from revloop.config import Settings as Settings
from revloop.engine import connect as connect
from revloop.engine import execute as execute
from revloop.engine import to_sql as to_sql
from revloop.exceptions import ConfigError as ConfigError
from revloop.exceptions import EngineError as EngineError
from revloop.exceptions import NotFittedError as NotFittedError
from revloop.exceptions import RevloopError as RevloopError
from revloop.exceptions import SchemaError as SchemaError
from revloop.exceptions import UnknownModelError as UnknownModelError
from revloop.ingest import read_dir as read_dir

__version__ = "0.1.0"

__all__ = [
    "ClosedLoop",
    "ConfigError",
    "EngineError",
    "NotFittedError",
    "RevloopError",
    "SchemaError",
    "Settings",
    "UnknownModelError",
    "__version__",
    "attribution",
    "closed_loop",
    "connect",
    "engine",
    "execute",
    "forecast",
    "identity",
    "ingest",
    "metrics",
    "read_dir",
    "report",
    "schema",
    "synthetic",
    "to_sql",
    "touchpoints",
]
