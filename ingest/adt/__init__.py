"""HL7 v2 ADT from the hospital information system, over MLLP: admit, transfer, discharge and their corrections.

``parser`` is the sans-I/O receiver for one connection, ``listener`` the asyncio
server that hands each event to the hub and acknowledges only what the hub
stored, ``events`` the typed events, ``tables`` the HL7 tables it maps and
``settings`` the configuration schema. The rules are written down in
``hl7_adt.md`` beside this file.
"""
