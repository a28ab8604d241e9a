"""The ``flb`` command line."""
