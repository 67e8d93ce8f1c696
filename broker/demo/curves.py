"""Plausible daily curves of the readings a smart lamppost reports.

Every reading is a function of the local time of day (and of the day of the
year for temperature), of the district (busier districts have more traffic and
more NO2) and of a small deterministic noise: the same seed, lamppost and
instant always give the same values, so a run can be reproduced.

Shapes, after typical urban measurements: traffic has a morning and an evening
peak and a trough before dawn; NO2 follows traffic; ozone peaks in the
afternoon sun; PM2.5 drifts slowly; temperature peaks mid-afternoon around a
seasonal mean, humidity moves the other way; lamps are on from dusk to dawn.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

#: seconds a noise value holds: readings change every few minutes, not every tick
NOISE_PERIOD = 60


@dataclass(frozen=True, slots=True)
class Moment:
    """An instant as the curves see it: local hour of day and day of year."""

    hour: float
    day_of_year: int
    bucket: int  # NOISE_PERIOD-second slot since the epoch

    @classmethod
    def of(cls, when: datetime, utc_offset: int) -> Moment:
        local = when.astimezone(timezone(timedelta(hours=utc_offset)))
        hour = local.hour + local.minute / 60 + local.second / 3600
        return cls(hour, local.timetuple().tm_yday, int(when.timestamp()) // NOISE_PERIOD)


def noise(seed: int, key: str, moment: Moment) -> float:
    """A deterministic value in [-1, 1] for (seed, key, noise slot)."""
    return random.Random(f"{seed}:{key}:{moment.bucket}").uniform(-1.0, 1.0)


def _bump(hour: float, centre: float, width: float) -> float:
    """A bell of height 1 around ``centre`` (hours, wrapping at midnight)."""
    distance = min(abs(hour - centre), 24 - abs(hour - centre))
    return math.exp(-((distance / width) ** 2))


def traffic_level(hour: float) -> float:
    """0..1: morning and evening peaks, a trough around 4:00."""
    base = 0.12 + 0.25 * _bump(hour, 13.0, 5.0)
    return min(1.0, base + 0.75 * _bump(hour, 8.5, 1.6) + 0.85 * _bump(hour, 18.5, 1.9))


def lamps_on(hour: float) -> bool:
    """Street lamps burn from dusk (18:15) to dawn (06:30)."""
    return hour >= 18.25 or hour < 6.5


def temperature(moment: Moment, coldest: float, warmest: float) -> float:
    """Seasonal mean (coldest in late January) plus a daily swing peaking at 14:30."""
    season = (1 - math.cos(2 * math.pi * (moment.day_of_year - 25) / 365)) / 2
    mean = coldest + (warmest - coldest) * season
    return mean + 3.5 * math.cos(2 * math.pi * (moment.hour - 14.5) / 24)


def air_quality_index(no2: float, pm25: float, o3: float) -> int:
    """A simple index: the worst of the pollutants against their guideline values."""
    return round(max(no2 / 200, pm25 / 35, o3 / 160) * 100)


def air_quality_level(index: int) -> str:
    if index <= 50:
        return "good"
    if index <= 100:
        return "moderate"
    return "unhealthy"


@dataclass(frozen=True, slots=True)
class Readings:
    """Every simulated value of one lamppost at one instant."""

    intensity: float  # vehicles per hour on the lamppost's lane
    occupancy: float  # 0..1
    speed: float  # km/h
    congested: bool
    no2: float  # µg/m³
    pm25: float
    pm10: float
    o3: float
    aqi: int
    temperature: float  # °C
    humidity: float  # 0..1
    wind_speed: float  # m/s
    pressure: float  # hPa
    lamp_on: bool
    power: float  # W


def readings(seed: int, key: str, busyness: float, moment: Moment, power_rating: float,
             temperatures: tuple[float, float]) -> Readings:
    """The readings of the lamppost ``key`` (busyness 0.5..1.5) at ``moment``."""

    def jitter(name: str, spread: float) -> float:
        return 1 + spread * noise(seed, f"{key}:{name}", moment)

    hour = moment.hour
    level = traffic_level(hour) * busyness
    intensity = max(0.0, 1800 * level * jitter("intensity", 0.1))
    occupancy = min(0.98, max(0.01, 0.75 * level * jitter("occupancy", 0.1)))
    speed = max(4.0, 55 * (1 - 0.8 * occupancy) * jitter("speed", 0.08))
    no2 = max(5.0, (18 + 95 * traffic_level((hour - 1) % 24) * busyness) * jitter("no2", 0.12))
    pm25 = max(3.0, (16 + 10 * math.sin(2 * math.pi * (hour - 9) / 24)) * jitter("pm25", 0.15))
    o3 = max(2.0, (20 + 90 * _bump(hour, 14.5, 3.0)) * jitter("o3", 0.12))
    temp = temperature(moment, *temperatures) + 0.4 * noise(seed, f"{key}:temp", moment)
    humidity = min(0.99, max(0.3, 0.78 - 0.018 * (temp - temperatures[0]) * jitter("rh", 0.05)))
    wind = max(0.0, (2.5 + 1.5 * _bump(hour, 15.0, 4.0)) * jitter("wind", 0.3))
    pressure = 1013 + 1.2 * math.cos(2 * math.pi * (hour - 10) / 12) + 0.3 * noise(
        seed, f"{key}:p", moment)
    on = lamps_on(hour)
    return Readings(
        intensity=round(intensity), occupancy=round(occupancy, 3), speed=round(speed, 1),
        congested=occupancy > 0.6, no2=round(no2, 1), pm25=round(pm25, 1),
        pm10=round(pm25 * 1.6, 1), o3=round(o3, 1), aqi=air_quality_index(no2, pm25, o3),
        temperature=round(temp, 1), humidity=round(humidity, 3), wind_speed=round(wind, 1),
        pressure=round(pressure, 1), lamp_on=on,
        power=round(power_rating * (0.92 + 0.05 * noise(seed, f"{key}:w", moment)), 1)
        if on else 0.0,
    )
