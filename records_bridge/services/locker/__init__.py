"""The Digi Health Locker (``teleicu locker``): patients keep their own records and choose who may see them.

Shaped on ABDM's consent manager: a clinician (HIU) asks for a consent
artefact, the patient grants, denies or revokes it, and a record moves only
under a granted, unexpired artefact that covers its type and date.

``consent_machine`` is the artefact's state machine and ``coverage`` the
access decision (both pure); ``share_tokens`` the signed share-link tokens;
``otp`` the one-time codes; ``fhir_consent`` the FHIR R4 ``Consent`` of an
artefact; ``store`` the database; ``app`` and the ``routes_*`` modules the HTTP
layer; ``cli`` the command line; ``static/`` the patient's page.
"""
