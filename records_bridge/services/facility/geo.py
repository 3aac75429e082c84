"""Great-circle distance (haversine, on a sphere of the Earth's mean radius) and the latitude/longitude box that holds
every point within a radius, so the database can prefilter on its indexed columns before the exact distance."""

from __future__ import annotations

import math

EARTH_RADIUS_KM = 6371.0088  # the IUGG mean radius; the spherical model is within 0.5 % of the ellipsoid


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) holding the circle; a little larger than needed, never smaller. India lies
    far from the poles and the antimeridian, so the box never wraps."""
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    coslat = math.cos(math.radians(min(89.0, abs(lat) + dlat)))
    dlon = min(180.0, math.degrees(radius_km / (EARTH_RADIUS_KM * coslat)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def parse_point(text: str) -> tuple[float, float]:
    """``"lat,lon"`` in decimal degrees; ValueError if it is not."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError("near is lat,lon (decimal degrees)")
    lat, lon = float(parts[0]), float(parts[1])
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError("near is lat,lon: latitude -90 to 90, longitude -180 to 180")
    return lat, lon
