"""The simulation clock: float days since the window start, and business hours."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["F64", "I64", "B", "Window", "business_add", "sample_days", "time_of_day"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

#: fixed US holidays (month, day) on which nobody answers leads
_HOLIDAYS = ((1, 1), (7, 4), (12, 24), (12, 25), (12, 31))
_OPEN_UTC_H = 14
_DAY_MINUTES = 8 * 60


@dataclass(frozen=True)
class Window:
    """The company's history: ``months`` calendar months ending on ``end`` (inclusive).

    Times are float days since ``start`` (midnight UTC); everything generated lies
    in ``[0, days)``.
    """

    start: _dt.date
    end: _dt.date

    @classmethod
    def ending(cls, end: _dt.date, months: int) -> Window:
        stop = end + _dt.timedelta(days=1)
        y, m = divmod(stop.year * 12 + (stop.month - 1) - months, 12)
        day = min(stop.day, 28)
        return cls(_dt.date(y, m + 1, day), end)

    @property
    def days(self) -> float:
        return float((self.end - self.start).days + 1)

    @property
    def start_epoch_s(self) -> int:
        return int(
            _dt.datetime(
                self.start.year, self.start.month, self.start.day, tzinfo=_dt.UTC
            ).timestamp()
        )

    def end_datetime(self) -> _dt.datetime:
        """The first instant after the window (exclusive bound, tz-naive UTC)."""
        return _dt.datetime.combine(self.end + _dt.timedelta(days=1), _dt.time())

    def epoch_seconds(self, days: F64) -> I64:
        return self.start_epoch_s + np.floor(days * 86400.0).astype(np.int64)

    def timestamps(self, days: F64, mask: npt.NDArray[np.bool_] | None = None) -> pa.Array:
        """Tz-naive UTC microsecond timestamps, truncated to the second."""
        us = self.epoch_seconds(np.where(np.isfinite(days), days, 0.0)) * 1_000_000
        return pa.array(us, type=pa.timestamp("us"), mask=mask)

    def dates(self, days: I64) -> pa.Array:
        base = (self.start - _dt.date(1970, 1, 1)).days
        return pa.array((base + days).astype(np.int32), type=pa.date32())

    def month_index(self, days: F64) -> I64:
        """Calendar month of each time, counted from the start month (0-based)."""
        d = np.datetime64(self.start, "D") + np.floor(days).astype("timedelta64[D]")
        m0 = np.datetime64(self.start, "M")
        return (d.astype("datetime64[M]") - m0).astype(np.int64)

    def weekday(self, days: F64) -> I64:
        """0 = Monday ... 6 = Sunday."""
        return ((np.floor(days).astype(np.int64) + self.start.weekday()) % 7).astype(np.int64)

    def holidays(self) -> npt.NDArray[np.datetime64]:
        years = range(self.start.year - 1, self.end.year + 3)
        return np.array(
            [_dt.date(y, m, d) for y in years for m, d in _HOLIDAYS], dtype="datetime64[D]"
        )


_HOUR_WEIGHTS = np.array(
    [
        1,
        0.8,
        0.6,
        0.5,
        0.5,
        0.6,
        0.9,
        1.5,
        2.5,
        3.5,
        4.0,
        4.2,
        4.5,
        5.5,
        6.5,
        7.0,
        7.0,
        6.8,
        6.0,
        5.5,
        5.0,
        4.0,
        2.8,
        1.8,
    ],
    dtype=np.float64,
)  # fmt: skip  (UTC; Europe mornings, US afternoons)


def time_of_day(rng: np.random.Generator, n: int) -> F64:
    """Fractions of a day drawn from a B2B (Europe + US working day) hourly profile."""
    hours = rng.choice(24, size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    return (hours + rng.random(n)) / 24.0


def sample_days(
    rng: np.random.Generator, window: Window, n: int, *, growth: float, weekend: float
) -> F64:
    """Times in the window with monthly growth ``exp(growth * month)``, fewer at weekends,
    and a working-day hour profile."""
    ndays = int(window.days)
    day = np.arange(ndays, dtype=np.float64)
    w = np.exp(growth * window.month_index(day).astype(np.float64))
    w = w * np.where(window.weekday(day) >= 5, weekend, 1.0)
    picked = rng.choice(ndays, size=n, p=w / w.sum())
    return picked + time_of_day(rng, n)


def business_add(window: Window, days: F64, minutes: F64) -> F64:
    """The time ``minutes`` business minutes after ``days``.

    Business hours are 14:00-22:00 UTC (09:00-17:00 US Eastern standard time),
    Monday to Friday, without the fixed holidays; time outside them does not count.

    Examples
    --------
    >>> w = Window(_dt.date(2024, 1, 1), _dt.date(2024, 12, 31))   # a Monday (a holiday)
    >>> float(business_add(w, np.array([1.0 + 21 / 24]), np.array([120.0]))[0] * 24 - 24)
    39.0
    """
    hol = window.holidays()
    start = np.datetime64(window.start, "D")
    whole = np.floor(days)
    date = start + whole.astype(np.int64).astype("timedelta64[D]")
    minute = (days - whole) * 1440.0 - _OPEN_UTC_H * 60.0
    before = np.busday_count(start, date, holidays=hol).astype(np.float64)
    is_bd = np.is_busday(date, holidays=hol)
    offset = np.where(is_bd, np.clip(minute, 0.0, _DAY_MINUTES), 0.0)
    b = before * _DAY_MINUTES + offset + minutes
    k = np.floor(b / _DAY_MINUTES)
    r = b - k * _DAY_MINUTES
    # start is a business day?  busday_offset counts from the first business day on or after it
    target = np.busday_offset(start, k.astype(np.int64), roll="forward", holidays=hol)
    out_days = (target - start).astype(np.int64).astype(np.float64)
    return np.asarray(out_days + (_OPEN_UTC_H * 60.0 + r) / 1440.0, dtype=np.float64)
