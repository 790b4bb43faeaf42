"""Errors a user can act on. Their messages say what to change; the command line prints them
without a traceback."""


class PruneflowError(Exception):
    """Base of the errors whose message tells the user what to do."""


class ConfigError(PruneflowError, ValueError):
    """A config value outside its valid values; the message names the key and those values."""
