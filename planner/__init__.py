"""rlplan: place, simulate and run RL post-training jobs for LLMs.

The planning path (this package without ``executor``) imports no torch, ray or vllm.
"""

__version__ = "0.1.0"
