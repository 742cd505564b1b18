"""Engine timestamps (int nanoseconds since the Unix epoch, UTC) as text.

Every conversion uses exact integer arithmetic: a timestamp is truncated toward the past to the
microsecond (`datetime`'s resolution) and, for the coarser formats, to the second or minute. No
float division, so a time is never rounded up into the next second or minute. All output is UTC.
"""

from __future__ import annotations

import datetime as dt
import functools

NS_PER_US = 1_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def utc_datetime(ts_ns: int) -> dt.datetime:
    """`ts_ns` (ns since the epoch) as an aware UTC datetime, truncated to the microsecond.

    Raises OverflowError outside datetime's range (years 1–9999).
    """
    return _EPOCH + dt.timedelta(microseconds=int(ts_ns) // NS_PER_US)


@functools.lru_cache(maxsize=256)  # the events of one bar share its time: formatted once
def iso_utc(ts_ns: int, *, fraction: bool = False) -> str:
    """ISO-8601 UTC with a `Z`: `2019-10-17T09:00:00Z` (truncated to the second).

    With `fraction`, a time that has microseconds keeps them (`2019-10-17T09:00:00.250000Z`); a
    whole second is written without a fraction, as above.
    """
    when = utc_datetime(ts_ns)
    if not fraction:
        when = when.replace(microsecond=0)
    return when.isoformat().replace("+00:00", "Z")


def minute_utc(ts_ns: int) -> str:
    """Date and time to the minute for messages and tables: `2019-10-17 09:00` (UTC, truncated).

    A time datetime cannot show (beyond years 1–9999) comes back as `<ts_ns> ns`.
    """
    try:
        return utc_datetime(ts_ns).strftime("%Y-%m-%d %H:%M")
    except OverflowError:
        return f"{ts_ns} ns"
