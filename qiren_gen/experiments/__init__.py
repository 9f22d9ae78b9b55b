"""Experiment drivers and script command lines (the logic behind scripts/): the stage-1 and stage-2 trainers, the
bundled-pipeline build, the LFW functa sweep, the paper reproduction suite, the QIREN variant search."""
