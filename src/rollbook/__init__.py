"""rollbook: a verifiable off-chain execution layer for crypto derivatives.

Layers, in the direction data flows: gateway -> sequencer -> execution -> commitment ->
settlement -> feeds; the verifier replays execution from the chain. Today the package holds
``execution`` (the state transition function), ``commitment`` (the state digest) and the
benchmarks; the other layers arrive with their issues.
"""

from rollbook._pure import activate

# first, before any submodule loads: ROLLBOOK_PURE=1, or a compiled build that no longer matches
# its sources, makes every rollbook module load from its .py file (see rollbook._pure)
activate()

__version__ = "0.1.0"

__all__ = ["__version__"]
