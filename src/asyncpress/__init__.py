"""asyncpress: an asynchronous publishing and community backend."""

__version__ = "0.1.0"
