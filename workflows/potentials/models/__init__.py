"""Bundled model files (see MODEL_CARD.md)."""
