"""Widgets grouped by area: plots, run header."""
