"""The default configuration files, installed as the package ``teleicu.defaults`` (see pyproject.toml).

Only the command line layer (``teleicu.config_files``) reads them, with ``importlib.resources``;
every other package is handed the loaded configuration.
"""
