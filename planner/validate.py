"""``plan validate``: the cost model against published measurements.

Reads ``planner/data/measurements.yaml`` (training step times and throughputs, generation
throughputs and latencies, NCCL collective bandwidths, each with its source), predicts
every measured figure with the same cost functions the planner uses, and reports the
error per entry and the mean absolute percentage error (MAPE) per category. Nothing here
is fitted: a bad error is a finding about the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from planner.errors import PlanError, require

CATEGORIES = ("training", "generation", "communication")
DEFAULT_PATH = Path(__file__).parent / "data" / "measurements.yaml"
LARGE_MESSAGE_BYTES = 1 << 30
"""Message size for bus-bandwidth entries that give none: nccl-tests reports the plateau
at large sizes (its issues quote runs up to 1 GiB and beyond)."""
DEFAULT_DECODE_STEPS = 32
"""Output length for a generation entry that reports per-step decode time but no length."""


@dataclass(frozen=True)
class Row:
    """One measured figure and its prediction."""

    id: str
    category: str
    metric: str
    measured: float
    predicted: float | None
    source: str = ""
    note: str = ""

    @property
    def error_pct(self) -> float | None:
        if self.predicted is None:
            return None
        return 100.0 * (self.predicted - self.measured) / self.measured

    def to_dict(self) -> dict:
        return {"id": self.id, "category": self.category, "metric": self.metric, "measured": self.measured,
                "predicted": self.predicted, "error_pct": self.error_pct, "source": self.source,
                **({"note": self.note} if self.note else {})}


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def mape(self, category: str) -> float | None:
        errors = [abs(r.error_pct) for r in self.rows if r.category == category and r.error_pct is not None]
        return sum(errors) / len(errors) if errors else None

    def categories(self) -> list[str]:
        return [c for c in CATEGORIES if any(r.category == c for r in self.rows)]

    def to_dict(self) -> dict:
        return {"rows": [r.to_dict() for r in self.rows],
                "mape_pct": {c: self.mape(c) for c in self.categories()},
                "max_abs_error_pct": max((abs(r.error_pct) for r in self.rows if r.error_pct is not None),
                                         default=None)}


# ---- loading ---------------------------------------------------------------------------
def load_measurements(path: Path | str | None = None) -> dict:
    import yaml

    path = Path(path) if path else DEFAULT_PATH
    require(path.is_file(), f"measurements file {str(path)!r} not found: pass an existing YAML file")
    with open(path) as f:
        doc = yaml.safe_load(f)
    require(isinstance(doc, dict) and "models" in doc,
            f"{path}: not a measurements file (needs a 'models' section and measurement categories)")
    return doc


def parse_models(doc: dict) -> dict:
    """ModelSpecs from the file's ``models`` section (Hugging Face field names; no KV heads
    given means multi-head attention)."""
    from planner.models import ModelSpec

    out = {}
    for name, m in doc["models"].items():
        heads = m["num_attention_heads"]
        out[name] = ModelSpec(name=name, hidden_size=m["hidden_size"], num_layers=m["num_hidden_layers"],
                              num_heads=heads, num_kv_heads=m.get("num_key_value_heads", heads),
                              intermediate_size=m["intermediate_size"], vocab_size=m["vocab_size"],
                              mlp=m.get("mlp", "swiglu"), tied_embeddings=bool(m.get("tie_word_embeddings", False)))
    return out


def _gpu_set(gpu_name: str, gpus: int, nodes: int | None = None):
    from planner.hardware import gpu_by_name, single_node_group_cluster

    gpu = gpu_by_name(gpu_name)
    per_node = gpus // nodes if nodes else min(8, gpus)
    return single_node_group_cluster(gpu, gpus, gpus_per_node=per_node).gpu_set(gpus)


# ---- predictions per category ----------------------------------------------------------
def _training_rows(entry: dict, models: dict) -> list[Row]:
    from planner.cost_model.efficiency import EFFICIENCY
    from planner.cost_model.training import train_step
    from planner.parallel import ParallelConfig

    tp, pp, gpus = entry["tp"], entry["pp"], entry["gpus"]
    par = ParallelConfig(tp=tp, pp=pp, dp=gpus // (tp * pp), zero=entry.get("zero", 0),
                         recompute=entry.get("recompute", "none"), micro_batch=entry.get("micro_batch", 1),
                         sequence_parallel=bool(entry.get("sequence_parallel", False)))
    eff = replace(EFFICIENCY, flash_attention=entry.get("attention", "flash") == "flash")
    cost = train_step(models[entry["model"]], par, _gpu_set(entry["gpu"], gpus), entry["global_batch"],
                      entry["seq_len"], eff=eff)
    if "step_time_s" in entry:
        return [Row(entry["id"], "training", "step_time_s", entry["step_time_s"], cost.time_s, entry.get("source", ""))]
    return [Row(entry["id"], "training", "tokens_per_s_per_gpu", entry["tokens_per_s_per_gpu"],
                cost.info["tokens_per_s_per_gpu"], entry.get("source", ""))]


GENERATION_METRICS = {"output_tokens_per_s": "output_tokens_per_s", "ttft_s": "ttft_s",
                      "prefill_s": "prefill_s", "decode_step_s": "decode_step_s"}


def _generation_rows(entry: dict, models: dict, generate) -> list[Row]:
    metrics = [m for m in GENERATION_METRICS if m in entry]
    if generate is None:
        return [Row(entry["id"], "generation", m, entry[m], None, entry.get("source", ""),
                    "generation model not available") for m in metrics]
    from planner.parallel import GenerationConfig

    batch = entry["batch"]
    output_len = entry.get("output_len", DEFAULT_DECODE_STEPS)
    cost = generate(models[entry["model"]], GenerationConfig(tp=entry["tp"], replicas=1, max_num_seqs=batch),
                    _gpu_set(entry["gpu"], entry["tp"]), output_lens=[output_len] * batch,
                    input_len=entry["input_len"], static=True)
    return [Row(entry["id"], "generation", m, entry[m], float(cost.info[GENERATION_METRICS[m]]),
                entry.get("source", "")) for m in metrics]


def _communication_rows(entry: dict) -> list[Row]:
    from planner.cost_model.comm import collective

    gpus = _gpu_set(entry["gpu"], entry["gpus"], entry.get("nodes"))
    nbytes = entry.get("bytes", LARGE_MESSAGE_BYTES)
    cost = collective(entry["op"], nbytes, entry["gpus"], gpus)
    rows = []
    for metric, value in (("time_s", cost.time_s), ("busbw_gbps", cost.busbw_gbps), ("algbw_gbps", cost.algbw_gbps)):
        if metric in entry:
            rows.append(Row(entry["id"], "communication", metric, entry[metric], value, entry.get("source", "")))
    return rows


def _generate_function():
    """The generation model, imported lazily (None while it is not part of the package)."""
    try:
        from planner.cost_model.generation import generate
    except ImportError:
        return None
    return generate


def run_validation(categories: list[str] | None = None, path: Path | str | None = None) -> Report:
    """Predict every entry of the chosen categories (all by default)."""
    chosen = list(categories or CATEGORIES)
    for c in chosen:
        require(c in CATEGORIES, f"unknown category {c!r}: use one of {', '.join(CATEGORIES)}")
    doc = load_measurements(path)
    models = parse_models(doc)
    report = Report()
    generate = _generate_function() if "generation" in chosen else None
    for category in chosen:
        for entry in doc.get(category) or []:
            try:
                if category == "training":
                    report.rows += _training_rows(entry, models)
                elif category == "generation":
                    report.rows += _generation_rows(entry, models, generate)
                else:
                    report.rows += _communication_rows(entry)
            except KeyError as err:
                raise PlanError(f"measurement {entry.get('id', '?')!r} lacks field {err}: fix the measurements file")
    return report
