"""Side-by-side benchmarks (medians and ratios measured in one run), called by the thin ``scripts/benchmark_*.py``.

``simulator``: the circuit against PennyLane; ``heads``: batched heads against a loop; ``decoders``: the generative
decoders' training step; ``demo``: the Gradio demo as a visitor meets it. Nothing else in the package imports these.
"""
