"""tfposenc: measure, control and exploit position information in CNNs."""

__version__ = "0.1.0"
