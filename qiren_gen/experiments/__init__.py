"""Experiment drivers (the logic behind scripts/): the paper reproduction suite and the QIREN variant search."""
