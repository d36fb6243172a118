"""The ``graftwork`` command line."""
