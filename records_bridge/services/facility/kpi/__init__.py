"""The state programme's KPI engine and dashboard, part of the facility service.

The records bridge posts the hub's outbox events (``wire.outbox_events``) to
``POST /api/kpi/events``; ``store`` keeps the facts they carry in normalised
tables (its own migrations, version table ``kpi_alembic_version``); ``queries``
computes every KPI with one documented SQL query over those tables; ``report``
lays the figures out per facility and per state (JSON and CSV); ``routes`` is
the HTTP API and the pages (``static``). Facilities' names, states, districts
and staffed ICU beds come from the registry through ``facilities.Facilities``.
``settings`` holds what is configurable (time zone, NEWS2 response times,
expected sample rate).
"""
