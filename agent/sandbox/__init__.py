"""QuickJS-in-wasmtime sandbox for agent code (see docs/CONTRACTS.md, agent/sandbox).

Imports nothing of ours: it knows capabilities, limits and run records, not rooms or agents."""
from .capability import Binding, Bindings, Capability, CapabilityError, RawJSON, declarations, markdown
from .record import CallRecord, ErrorKind, Limits, RunError, RunRecord, RunStats, scrub, well_formed
from .sandbox import Sandbox

__all__ = ["Binding", "Bindings", "Capability", "CapabilityError", "RawJSON", "declarations", "markdown", "Limits",
           "RunRecord", "RunError", "ErrorKind", "CallRecord", "RunStats", "Sandbox", "scrub", "well_formed"]
