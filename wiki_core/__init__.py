"""The bottom layer every stage shares: settings, the event judge, the broker contract,
time formatting, the version. It imports none of the stages (tests/test_layers.py)."""

__version__ = "0.1.0"
