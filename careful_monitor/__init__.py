"""careful-monitor: lifecycle monitoring (the L of CAREFUL) for models trained on real + synthetic data."""

__version__ = "0.1.0"
