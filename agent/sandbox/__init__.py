"""QuickJS-in-wasmtime sandbox for agent code (see docs/CONTRACTS.md, agent/sandbox).

Imports nothing of ours: it knows capabilities, limits and run records, not rooms or agents."""
from .capability import Binding, Bindings, Capability, CapabilityError, RawJSON, declarations, markdown
from .fair import UNKEYED, FairPool, OverBudget, Share, Shares
from .record import CallRecord, ErrorKind, Limits, RunError, RunRecord, RunStats, scrub, well_formed
from .sandbox import Sandbox, default_workers

__all__ = ["Binding", "Bindings", "Capability", "CapabilityError", "RawJSON", "declarations", "markdown", "Limits",
           "RunRecord", "RunError", "ErrorKind", "CallRecord", "RunStats", "Sandbox", "scrub", "well_formed",
           "default_workers", "FairPool", "OverBudget", "Share", "Shares", "UNKEYED"]
