"""The facility registry (``teleicu facility``): the state's health facilities with the ABDM Health Facility Registry's
fields, their bed capacity per bed type (licensed and staffed apart), the live ICU occupancy the records bridge sends
from each hub's census, a GeoJSON API, an offline map page for the programme's command centre, and the programme's
KPI dashboard (``kpi``), computed from the hubs' events the bridge sends.

``vocab`` the fixed vocabularies, ``fields`` the sans-I/O checks of a facility, its capacity and its occupancy,
``geo`` great-circle distance and bounding boxes, ``csv_import`` a district's CSV file, ``store`` the database,
``geojson`` the features and the stale rule, ``policy`` who may do what, ``problems`` the errors, ``session`` the map
page's sign-in through the hub, ``routes`` the HTTP API, ``pages`` the map page, ``app`` the application, ``cli`` the
command line.
"""
