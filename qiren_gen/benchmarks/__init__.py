"""Side-by-side benchmarks (medians and ratios measured in one run), called by the thin ``scripts/benchmark_*.py``.

``simulator``: the circuit against PennyLane; ``heads``: batched heads against a loop; ``shots``: a pipeline call
with finite shots against the exact one; ``decoders``: the generative decoders' training step; ``demo``: the Gradio
demo as a visitor meets it; ``sampling``: samplers on one pipeline (DDIM 50 steps against DPM-Solver++ 20).
Nothing else in the package imports these.
"""
