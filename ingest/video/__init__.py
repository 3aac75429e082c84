"""Live bedside video: the hub's part is signalling only (relay, TURN credentials, audit); it never touches media."""
