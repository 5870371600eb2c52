"""Datasets for training analog networks (being built)."""
