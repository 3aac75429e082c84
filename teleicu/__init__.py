"""teleicu command line: ``teleicu demo | hub | edge | sim | score``."""
