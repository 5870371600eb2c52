"""The version of circuitnn (part of every family's provenance)."""

__version__ = "0.1.0"
