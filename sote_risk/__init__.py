"""sote-risk: risk prediction and decision support for an integrated social and health care region."""

__version__ = "0.1.0"
