"""QuickJS-in-wasmtime sandbox for agent code (see docs/CONTRACTS.md, agent/sandbox)."""
from .capability import Capability, CapabilityError, RawJSON, declarations, markdown
from .models import CallRecord, Limits, RunError, RunRecord, RunStats
from .sandbox import Sandbox

__all__ = ["Capability", "CapabilityError", "RawJSON", "declarations", "markdown", "Limits", "RunRecord",
           "RunError", "CallRecord", "RunStats", "Sandbox"]
