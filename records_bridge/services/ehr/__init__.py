"""The EHR "lighter service" (``teleicu ehr``): a FHIR R4 REST subset (create, conditional create, update, read, search).

``app`` is the HTTP layer, ``store`` the database, ``search`` the sans-I/O search
parameters and index extraction, ``outcomes`` the OperationOutcome of every
error, ``clients`` the bearer secrets, ``cli`` the command line.
"""
