"""The cost model: pure functions from specs to itemised stage costs.

Modules: ``efficiency`` (every calibrated parameter, one place), ``compute`` (GEMM and
memory-bound kernel time), ``comm`` (collectives), ``memory`` (bytes per GPU),
``training``, ``inference`` (forward-only), ``generation`` (prefill/decode under
continuous batching), ``transfer`` (weight resharding, batch moves, offload).
"""
