"""Lead metrics beyond the data cases: errors, invariants, compilation, business hours."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import holidays as holidays_pkg
import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revloop
from revloop import metrics
from revloop.exceptions import ConfigError, SchemaError
from revloop.metrics import _lead
from revloop.schema import TABLES

LEAD_METRICS = [
    "speed_to_lead",
    "lead_contact_rate",
    "lead_to_opportunity_rate",
    "conversion_by_response_time",
]
T0 = dt.datetime(2024, 1, 1)


def _unbound(name: str) -> ibis.Table:
    return ibis.table(TABLES[name].schema(), name=name)


def _frame(rows, columns, timestamp):
    df = pd.DataFrame(rows, columns=columns)
    return df.astype({c: "datetime64[us]" if c == timestamp else "string" for c in columns})


def _tables(con, leads, acts, opps=None):
    out = {
        "leads": con.create_table(
            "leads",
            _frame(leads, ["lead_id", "person_id", "created_at", "source"], "created_at"),
            overwrite=True,
        ),
        "activities": con.create_table(
            "activities",
            _frame(
                acts,
                ["activity_id", "lead_id", "occurred_at", "kind", "direction", "outcome"],
                "occurred_at",
            ),
            overwrite=True,
        ),
    }
    if opps is not None:
        out["opportunities"] = con.create_table(
            "opportunities",
            _frame(opps, ["opportunity_id", "lead_id", "created_at", "status"], "created_at"),
            overwrite=True,
        )
    return out


# ---------------------------------------------------------------- compile, never execute


@pytest.mark.parametrize("name", LEAD_METRICS)
@pytest.mark.parametrize(
    "scope",
    [{"by": "source"}, {"period": "month", "by": "hour_of_week", "as_of": "2024-06-01"}],
    ids=["by_source", "by_month_hour_as_of"],
)
def test_compiles_for_duckdb_against_unbound_tables(name, scope):
    tables = {t: _unbound(t) for t in ("leads", "activities", "opportunities")}
    result = metrics.compute(name, tables, **scope)
    sql = ibis.to_sql(result.table, dialect="duckdb")
    assert "SELECT" in sql


def test_business_hours_compiles():
    tables = {t: _unbound(t) for t in ("leads", "activities")}
    result = metrics.compute(
        "speed_to_lead",
        tables,
        clock="business_hours",
        timezone="Europe/Paris",
        holidays="FR",
        output="km_curve",
    )
    assert "SELECT" in ibis.to_sql(result.table, dialect="duckdb")


def test_every_policy_cites_a_source_and_benchmarks_have_sources():
    for name in LEAD_METRICS:
        d = metrics.get_metric(name)
        assert d.family == "lead"
        for p in d.policies:
            assert p.sources, f"{name}.{p.name} cites no source"
            if p.choices is not None:
                assert set(p.choices) <= set(p.sources), f"{name}.{p.name}"
        assert d.benchmarks, name
        assert all(b.source for b in d.benchmarks)


# ---------------------------------------------------------------- negative cases


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        (
            "speed_to_lead",
            {"clock": "fast"},
            "speed_to_lead: clock='fast' is not allowed; choose one of ['wall', 'business_hours'] "
            "(default 'wall').",
        ),
        (
            "speed_to_lead",
            {"percentile": "median"},
            "speed_to_lead: percentile='median' is not allowed; choose one of "
            "['linear', 'nearest_rank'] (default 'linear').",
        ),
        (
            "speed_to_lead",
            {"calendar": "weekdays"},
            "speed_to_lead: calendar='weekdays': not 'Days HH:MM-HH:MM'; "
            "e.g. 'Mon-Fri 09:00-17:00' or 'Mon-Thu,Sat 08:30-18:00'",
        ),
        (
            "speed_to_lead",
            {"calendar": "Mon-Fri 17:00-09:00"},
            "speed_to_lead: calendar='Mon-Fri 17:00-09:00': closing time must be after opening time",
        ),
        (
            "speed_to_lead",
            {"calendar": "Mon-Fry 09:00-17:00"},
            "speed_to_lead: calendar='Mon-Fry 09:00-17:00': unknown day in 'Mon-Fry'; use Mon…Sun",
        ),
        (
            "speed_to_lead",
            {"timezone": "Mars/Base"},
            "speed_to_lead: timezone='Mars/Base': not an IANA time zone; e.g. "
            "'America/New_York', 'Europe/Paris' or 'UTC'",
        ),
        (
            "speed_to_lead",
            {"holidays": "XX"},
            "speed_to_lead: holidays='XX': not a country code of the holidays package; "
            "e.g. 'US', 'GB', 'DE', or none",
        ),
        (
            "lead_contact_rate",
            {"window_days": 0},
            "lead_contact_rate: window_days=0: expected a whole number of days >= 1, e.g. 30",
        ),
        (
            "lead_contact_rate",
            {"basis": "reply"},
            "lead_contact_rate: basis='reply' is not allowed; choose one of "
            "['contact', 'attempt'] (default 'contact').",
        ),
        (
            "lead_to_opportunity_rate",
            {"variant": "funnel"},
            "lead_to_opportunity_rate: variant='funnel' is not allowed; choose one of "
            "['cohort', 'flow'] (default 'cohort').",
        ),
        (
            "lead_to_opportunity_rate",
            {"window_days": 2.5},
            "lead_to_opportunity_rate: window_days=2.5: expected a whole number of days >= 1, "
            "e.g. 30",
        ),
    ],
)
def test_bad_policy_value_is_a_config_error(name, params, message):
    tables = {t: _unbound(t) for t in ("leads", "activities", "opportunities")}
    with pytest.raises(ConfigError) as err:
        metrics.compute(name, tables, **params)
    assert str(err.value) == message


def test_missing_activities_table_is_a_schema_error():
    with pytest.raises(SchemaError) as err:
        metrics.compute("speed_to_lead", {"leads": _unbound("leads")})
    assert str(err.value) == (
        "speed_to_lead needs the table(s) ['activities']; given ['leads']. "
        "Add activities.csv to the folder."
    )


def test_unknown_by_column_is_a_schema_error():
    tables = {t: _unbound(t) for t in ("leads", "activities")}
    with pytest.raises(SchemaError, match="cannot group leads by 'campaign'"):
        metrics.compute("speed_to_lead", tables, by="campaign")


def test_holidays_none_string_is_no_holidays(con):
    tables = _tables(
        con,
        [("l1", "p1", dt.datetime(2024, 7, 3, 16), "web")],
        [("a1", "l1", dt.datetime(2024, 7, 5, 10), "call", "outbound", None)],
    )
    got, stated = {}, {}
    for value in (None, "none", "NULL", "US", "us", " Us "):
        r = metrics.compute("speed_to_lead", tables, clock="business_hours", holidays=value)
        got[value] = con.execute(r.table)["value"].iloc[0]
        stated[value] = r.policy["holidays"]
    # Wed 3 Jul 16:00 -> Fri 5 Jul 10:00: 1 h + 8 h + 1 h = 600 min; with US holidays
    # the 4th is off: 1 h + 1 h = 120 min. A country code in any case is the code, and
    # the output states the normalised value
    assert got == {
        None: 600.0,
        "none": 600.0,
        "NULL": 600.0,
        "US": 120.0,
        "us": 120.0,
        " Us ": 120.0,
    }
    assert stated == {None: None, "none": None, "NULL": None, "US": "US", "us": "US", " Us ": "US"}


def test_rates_are_null_not_zero_without_mature_leads(con):
    tables = _tables(
        con,
        [("l1", "p1", T0, "web")],
        [("a1", "l1", T0 + dt.timedelta(hours=1), "call", "outbound", "connected")],
        [("o1", "l1", T0 + dt.timedelta(days=2), "open")],
    )
    for name in ("lead_contact_rate", "lead_to_opportunity_rate"):
        got = con.execute(metrics.compute(name, tables).table)
        assert pd.isna(got["value"].iloc[0]), name
        assert got["immature_leads"].iloc[0] == 1, name


# ---------------------------------------------------------------- business hours


def _reference_minutes(t0: dt.datetime, t1: dt.datetime, tz: str, country: str | None) -> float:
    """Brute force: count working minutes one by one (Mon–Fri 09–17 local)."""
    zone = zoneinfo.ZoneInfo(tz)
    off = holidays_pkg.country_holidays(country) if country else {}
    n = 0
    t = t0.replace(tzinfo=dt.UTC)
    end = t1.replace(tzinfo=dt.UTC)
    while t < end:
        local = t.astimezone(zone)
        if local.weekday() < 5 and 9 <= local.hour < 17 and local.date() not in off:
            n += 1
        t += dt.timedelta(minutes=1)
    return float(n)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(min_value=0, max_value=60 * 24 * 90),
    length=st.integers(min_value=0, max_value=60 * 24 * 9),
    tz=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]),
    country=st.sampled_from([None, "US"]),
)
def test_business_minutes_match_brute_force(con, start, length, tz, country):
    t0 = dt.datetime(2024, 2, 20) + dt.timedelta(minutes=start)
    t1 = t0 + dt.timedelta(minutes=length)
    tables = _tables(
        con,
        [("l1", "p1", t0, "web")],
        [("a1", "l1", t1, "call", "outbound", None)],
    )
    r = metrics.compute(
        "speed_to_lead", tables, clock="business_hours", timezone=tz, holidays=country
    )
    got = con.execute(r.table)["value"].iloc[0]
    assert got == pytest.approx(_reference_minutes(t0, t1, tz, country))


def test_business_day_table_is_cumulative():
    day, base, s1, e1, s2, e2, *_ = _lead._day_rows("Mon-Fri 09:00-17:00", "UTC", None)
    assert day[0] == dt.date(2000, 1, 1)
    # 2000-01-03 is a Monday: 8 h each weekday
    i = day.index(dt.date(2000, 1, 3))
    assert (s1[i], e1[i], s2[i], e2[i]) == (9 * 3600, 17 * 3600, 0, 0)
    assert base[i + 7] - base[i] == 5 * 8 * 3600


# ---------------------------------------------------------------- properties

lead_rows = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=60 * 24 * 120),  # created, minutes after T0
        st.one_of(st.none(), st.integers(min_value=-600, max_value=60 * 24 * 10)),  # touch
        st.sampled_from(["connected", "no_answer", "replied", None]),
        st.sampled_from(["web", "ads"]),
        st.one_of(st.none(), st.integers(min_value=0, max_value=60 * 24 * 60)),  # opportunity
    ),
    min_size=1,
    max_size=12,
)


def _random_tables(con, rows):
    leads, acts, opps = [], [], []
    for i, (created, touch, outcome, source, opp) in enumerate(rows):
        c = T0 + dt.timedelta(minutes=created)
        leads.append((f"l{i}", f"p{i}", c, source))
        if touch is not None:
            acts.append(
                (f"a{i}", f"l{i}", c + dt.timedelta(minutes=touch), "call", "outbound", outcome)
            )
        if opp is not None:
            opps.append((f"o{i}", f"l{i}", c + dt.timedelta(minutes=opp), "open"))
    return _tables(con, leads, acts, opps), len(leads)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=lead_rows,
    by=st.sampled_from([None, "source"]),
    basis=st.sampled_from(["contact", "attempt"]),
)
def test_censoring_never_drops_a_lead_and_rates_stay_in_unit_interval(con, rows, by, basis):
    tables, n = _random_tables(con, rows)
    stl = con.execute(metrics.compute("speed_to_lead", tables, by=by).table)
    assert int(stl["leads"].sum() + stl["contacted_before_created"].sum()) == n
    for col in ("never_contacted_share", "within_5m", "within_1h", "within_24h"):
        assert stl[col].dropna().between(0, 1).all(), col
    shares = stl[["within_5m", "within_1h", "within_24h"]].fillna(0)
    assert (shares["within_5m"] <= shares["within_1h"] + 1e-12).all()
    assert (shares["within_1h"] <= shares["within_24h"] + 1e-12).all()

    km = con.execute(metrics.compute("speed_to_lead", tables, output="km_curve").table)
    assert int(km["events"].sum() + km["censored"].sum()) == int(stl["leads"].sum())
    assert km["survival"].between(0, 1).all()
    assert (km["survival"].diff().dropna() <= 1e-12).all()

    for name, params in [
        ("lead_contact_rate", {"basis": basis, "window_days": 3}),
        ("lead_to_opportunity_rate", {"variant": "cohort", "window_days": 7}),
    ]:
        got = con.execute(metrics.compute(name, tables, by=by, **params).table)
        assert got["value"].dropna().between(0, 1).all(), name
        total = got["leads"].sum() + got["immature_leads"].sum()
        assert int(total + got["contacted_before_created"].sum()) == n, name


def test_lead_metrics_run_end_to_end_on_the_cli(tmp_path):
    pd.DataFrame(
        {"lead_id": ["l1"], "person_id": ["p1"], "created_at": ["2024-01-02 10:00:00"]}
    ).to_csv(tmp_path / "leads.csv", index=False)
    pd.DataFrame(
        {
            "activity_id": ["a1"],
            "lead_id": ["l1"],
            "occurred_at": ["2024-01-02 10:07:00"],
            "kind": ["call"],
            "direction": ["outbound"],
        }
    ).to_csv(tmp_path / "activities.csv", index=False)
    from typer.testing import CliRunner

    from revloop.cli import app

    res = CliRunner().invoke(
        app,
        [
            "metrics",
            str(tmp_path),
            "--metric",
            "speed_to_lead",
            "--param",
            "clock=business_hours",
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert '"value": 7.0' in res.output
    assert '"clock": "business_hours"' in res.output
    assert revloop.__name__ == "revloop"


def test_utc_offset_switches_at_the_dst_second():
    # New York springs forward at 2024-03-10 07:00 UTC (02:00 EST → 03:00 EDT)
    tz = zoneinfo.ZoneInfo("America/New_York")
    assert _lead._offsets(dt.date(2024, 3, 10), tz) == (-5 * 3600, 7 * 3600, -4 * 3600)
    assert _lead._offsets(dt.date(2024, 3, 11), tz) == (-4 * 3600, 86400, -4 * 3600)
