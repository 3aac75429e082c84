"""The OPD token queue "lighter service" (``teleicu queue``): facilities, departments, counters and daily queues;
tokens issued at a counter, a kiosk, from a booking or by a patient scanning the facility's QR code; a live
display board; SMS reminders; wait-time metrics.

``rules`` is the sans-I/O core (order of calling, service day, wait estimate, statistics; the public endpoint's
limiter is the services' ``records_bridge.services.ratelimit``), ``store`` the database, ``problems`` the errors, ``policy`` who may do what,
``board`` the display board's live feed, ``routes`` the HTTP API, ``app`` the application, ``cli`` the command line.
"""
