"""clpm_shared: the common library of the CLPM services."""

__version__ = "0.1.0"
