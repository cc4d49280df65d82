"""The ``cesar`` command line."""
