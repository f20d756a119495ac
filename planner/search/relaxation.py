"""An optimistic, small version of the candidate space: lower bounds that prove optimality.

Most of a role's candidates on one pool size differ only by a few percent of time traded
for memory (micro-batch, recompute, ZeRO stage, offload): hundreds of near-twins that make
the exact CP-SAT model slow to *prove* its optimum, though it finds it fast. Here the
candidates are covered by groups, and each group is replaced by its *ideal*: the smallest
time of every stage, the smallest resident and transient memory and the cheapest weight
sync found in the group, combined even where no single member has them all. Any real plan
maps to an ideal plan that is no slower and no larger, so the optimum over ideals, with
durations rounded down, is a lower bound of the real optimum (a relaxation).

Groups start as: one per role, node group, pool size, *sync class* (what the colocated
reshard depends on: the trainer's ZeRO-3 or not, tp, pp, dp; the engine's tp) and fastest
time point, covering every candidate that is no faster in any stage. Where the relaxed
optimum picks a group whose ideal is not a real candidate, ``split`` replaces that group
by its members, so the bound tightens exactly where it matters (``solve.py`` loops).
"""

from __future__ import annotations

from planner.search.candidates import Candidate
from planner.search.pricing import Pricer


def sync_class(c: Candidate) -> tuple:
    """What ``transfer.reshard_colocated`` reads of a layout (besides the GPU set)."""
    layout = c.layout
    if hasattr(layout, "zero"):
        return ("train", layout.zero >= 3, layout.tp, layout.pp, layout.dp)
    return ("generate", layout.tp, layout.replicas)


def _time_pareto(cands: list[Candidate]) -> list[Candidate]:
    """Candidates whose stage times no other candidate beats in every stage."""
    front: list[Candidate] = []
    for c in sorted(cands, key=lambda c: sum(c.stage_times.values())):
        if not any(all(f.stage_times[s] <= c.stage_times[s] for s in c.stage_times) for f in front):
            front.append(c)
    return front


def initial_groups(cands: list[Candidate]) -> list[list[Candidate]]:
    """Cover ``cands`` (one role's) by groups, as the module docstring says."""
    by_class: dict[tuple, list[Candidate]] = {}
    for c in cands:
        by_class.setdefault((c.group, c.num_gpus, sync_class(c)), []).append(c)
    groups = []
    for members in by_class.values():
        for fast in _time_pareto(members):
            groups.append([c for c in members if all(c.stage_times[s] >= fast.stage_times[s] for s in c.stage_times)])
    return groups


def ideal(members: list[Candidate]) -> Candidate:
    """The optimistic stand-in of a group (a real candidate when the group has one member)."""
    if len(members) == 1:
        return members[0]
    first = min(members, key=lambda c: sum(c.stage_times.values()))
    times = {s: min(c.stage_times[s] for c in members) for s in first.stage_times}
    return Candidate(first.role, first.group, first.num_gpus, first.layout, False, times,
                     min(c.static_bytes for c in members), min(c.transient_bytes for c in members))


class Relaxation:
    """Groups per role, their ideals, and optimistic weight-sync times for the CP-SAT model."""

    def __init__(self, pricer: Pricer, space: dict[str, list[Candidate]]) -> None:
        self.pricer = pricer
        self.groups = {r: initial_groups(cands) for r, cands in space.items()}
        self.ideals: dict[str, list[Candidate]] = {}
        self._members: dict[int, list[Candidate]] = {}
        for role in self.groups:
            self._rebuild(role)

    def _rebuild(self, role: str) -> None:
        self.ideals[role] = [ideal(g) for g in self.groups[role]]
        self._members.update((id(c), g) for c, g in zip(self.ideals[role], self.groups[role]))

    def split(self, role: str, index: int) -> bool:
        """Replace group ``index`` of ``role`` by its members; False if it is one already."""
        group = self.groups[role][index]
        if len(group) == 1:
            return False
        self.groups[role][index:index + 1] = [[c] for c in group]
        self._rebuild(role)
        return True

    # ---- the ``sync`` interface of CpSatModel ------------------------------------------------
    def colocated_s(self, src: Candidate, dst: Candidate) -> float:
        return min(self.pricer.sync_colocated_s(a, b) for a in self._members[id(src)] for b in self._members[id(dst)])

    def cross_terms(self, src: list[Candidate], dst: list[Candidate]) -> tuple[list[float], list[float], float]:
        from planner.search.cpsat import separable_cross

        src_members = [m for c in src for m in self._members[id(c)]]
        dst_members = [m for c in dst for m in self._members[id(c)]]
        export, imp, wire = separable_cross(self.pricer, src_members, dst_members)
        export_of = dict(zip(map(id, src_members), export))
        import_of = dict(zip(map(id, dst_members), imp))
        return ([min(export_of[id(m)] for m in self._members[id(c)]) for c in src],
                [min(import_of[id(m)] for m in self._members[id(c)]) for c in dst], wire)
