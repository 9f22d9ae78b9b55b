"""Training loops (Accelerate) shared by the scripts and the tests."""
