"""Auto-mapping: candidates priced by the cost model, a CP-SAT model that chooses pools,
colocation, layouts and the schedule together, the baselines people use today, and
HybridFlow's Algorithm 1 as a second search."""

from planner.search.run import SearchResult, run_search

__all__ = ["SearchResult", "run_search"]
