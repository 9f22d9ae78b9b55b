"""Quantum core of qiren-gen: the data re-uploading circuit, its fast simulator and its PennyLane twin.

This subpackage imports nothing else from ``qiren_gen``.
"""
from .circuit import DataReuploadingCircuit
from .gates import ENTANGLERS
from .heads import MultiHeadReuploadingCircuit, simulate_reuploading_heads
from .simulator import MAX_QUBITS, simulate_reuploading

__all__ = [
    "DataReuploadingCircuit",
    "ENTANGLERS",
    "MAX_QUBITS",
    "MultiHeadReuploadingCircuit",
    "simulate_reuploading",
    "simulate_reuploading_heads",
]
