"""The bridge process: follows the hub's outbox and delivers each event to the records services, exactly once in effect."""
