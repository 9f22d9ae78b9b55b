"""What every command-line program of the package shares: user errors as one line and an exit code, no traceback.

The lowest layer beside ``quantum``: it imports nothing else of the package, so the ``qiren-gen`` command, the
experiment drivers and the scripts all end their work the same way.
"""
from .allocator import configure_allocator
from .clock import process_age
from .errors import CLIError, hub_error_reason, one_line, run_reporting_errors

__all__ = ["CLIError", "configure_allocator", "hub_error_reason", "one_line", "process_age", "run_reporting_errors"]
