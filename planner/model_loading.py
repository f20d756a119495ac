"""Load a :class:`~planner.models.ModelSpec` from the built-in zoo or a Hugging Face config.

``load_model`` takes a zoo name (``qwen2.5-7b``, case-insensitive, or the zoo entry's Hugging
Face repo id ``Qwen/Qwen2.5-7B``), the path of a ``config.json``, or a model folder that
holds one. Only the architecture is read (no weights, no ``transformers``):

- Llama style (``llama``, ``mistral``, ``qwen2``, ``qwen3``): hidden_size,
  num_hidden_layers, num_attention_heads, num_key_value_heads, intermediate_size,
  vocab_size, head_dim, tie_word_embeddings, hidden_act;
- MoE (``qwen2_moe``, ``qwen3_moe``, ``mixtral``): num_experts or num_local_experts,
  num_experts_per_tok, moe_intermediate_size (Mixtral's experts are intermediate_size
  wide), Qwen2-MoE's shared expert;
- GPT-2 style (``gpt2``): n_embd, n_layer, n_head, n_inner (default 4*n_embd),
  vocab_size, n_positions; GELU MLP, tied embeddings. Its biases and learned position
  table (under 1% of the parameters) are not counted.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.resources
import json
from pathlib import Path

import yaml

from planner.errors import PlanError, require
from planner.models import ModelSpec

LLAMA_STYLE = ("llama", "mistral", "qwen2", "qwen3")
MOE_STYLE = ("qwen2_moe", "qwen3_moe", "mixtral")
GPT2_STYLE = ("gpt2",)
SUPPORTED_TYPES = LLAMA_STYLE + MOE_STYLE + GPT2_STYLE
QWEN3_DEFAULT_HEAD_DIM = 128
"""transformers' Qwen3Config/Qwen3MoeConfig default ``head_dim`` (used when a config omits it)."""
ZOO_META_KEYS = ("hf_repo", "source")
_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(ModelSpec) if f.name != "name")


# ---- public API ------------------------------------------------------------------------
def zoo_names() -> list[str]:
    """Names of the built-in models, in the zoo file's order."""
    return list(_zoo())


def zoo_metadata(name: str) -> dict:
    """``hf_repo`` and ``source`` (config.json URL) of a zoo model."""
    key = _zoo_key(name)
    require(key is not None, f"unknown model {name!r}: use one of {', '.join(zoo_names())}")
    return dict(_zoo()[key][1])


def load_model(name_or_path: str) -> ModelSpec:
    """A zoo model by name or Hugging Face repo id, or a ``config.json`` / model folder by path."""
    text = str(name_or_path).strip()
    require(text != "", "empty model name: give a zoo name (see `plan models`) or a path to a config.json")
    key = _zoo_key(text)
    if key is not None:
        return _zoo()[key][0]
    path = Path(text).expanduser()
    if path.exists():
        return _load_path(path)
    if text.endswith(".json") or text.startswith(("/", ".", "~")) or text.count("/") > 1:
        raise PlanError(f"model config {text!r} not found: check the path to the config.json or model folder")
    close = difflib.get_close_matches(text.lower().split("/")[-1], zoo_names(), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise PlanError(f"unknown model {text!r}{hint}: run `plan models` for the zoo, "
                    f"or pass the path of the model's config.json")


def model_from_config(config: dict, name: str, source: str = "config.json") -> ModelSpec:
    """A spec from a parsed Hugging Face ``config.json``; ``source`` prefixes every error."""
    require(isinstance(config, dict), f"{source}: expected a JSON object, got {type(config).__name__}")
    model_type = config.get("model_type")
    if model_type is None:
        model_type = "gpt2" if "n_embd" in config else "llama" if "hidden_size" in config else None
    require(isinstance(model_type, str) and model_type in SUPPORTED_TYPES,
            f"{source}: unsupported architecture {_describe_arch(config)}: rlplan reads model_type "
            f"{', '.join(SUPPORTED_TYPES)}; pick a zoo model (`plan models`) instead")
    if model_type in GPT2_STYLE:
        return _gpt2(config, name, source)
    return _llama(config, name, source, model_type)


def model_to_dict(spec: ModelSpec) -> dict:
    """Every field of ``spec`` plus the derived sizes a person checks first."""
    out = dataclasses.asdict(spec)
    out.update(num_params=spec.num_params, active_params=spec.active_params,
               weight_gib_bf16=round(spec.weight_bytes() / 1024**3, 2),
               kv_bytes_per_token_bf16=spec.kv_bytes_per_token())
    return out


# ---- the zoo ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _zoo() -> dict[str, tuple[ModelSpec, dict]]:
    resource = importlib.resources.files("planner") / "data" / "model_zoo.yaml"
    data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    zoo = {}
    for name, entry in data.items():
        unknown = set(entry) - set(_SPEC_FIELDS) - set(ZOO_META_KEYS)
        require(not unknown, f"model zoo entry {name!r}: unknown keys {sorted(unknown)}")
        meta = {k: entry[k] for k in ZOO_META_KEYS if k in entry}
        fields = {k: v for k, v in entry.items() if k not in ZOO_META_KEYS}
        zoo[name.lower()] = (ModelSpec(name=name, **fields), meta)
    return zoo


def _zoo_key(text: str) -> str | None:
    key = text.strip().lower()
    zoo = _zoo()
    if key in zoo:
        return key
    by_repo = {meta.get("hf_repo", "").lower(): name for name, (_, meta) in zoo.items()}
    return by_repo.get(key)


# ---- config.json files -----------------------------------------------------------------
def _load_path(path: Path) -> ModelSpec:
    if path.is_dir():
        folder, path = path, path / "config.json"
        require(path.is_file(), f"model folder {str(folder)!r} has no config.json: "
                                f"pass the folder that holds the model's config.json")
        name = folder.resolve().name
    else:
        name = path.resolve().parent.name if path.name == "config.json" else path.stem
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PlanError(f"{path}: cannot read it ({err}): pass a readable config.json") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise PlanError(f"{path}: malformed JSON at line {err.lineno}, column {err.colno}: "
                        f"{err.msg}: fix the file there") from None
    return model_from_config(config, name or "model", str(path))


def _describe_arch(config: dict) -> str:
    model_type = config.get("model_type")
    archs = config.get("architectures")
    arch = f" ({', '.join(map(str, archs))})" if isinstance(archs, list) and archs else ""
    return (repr(model_type) if model_type is not None else "(no model_type)") + arch


def _require_keys(config: dict, keys: tuple[str, ...], source: str, kind: str) -> None:
    missing = [k for k in keys if config.get(k) is None]
    require(not missing, f"{source}: missing {', '.join(missing)}: a {kind} config.json needs "
                         f"{', '.join(keys)}")


def _int(config: dict, key: str, source: str, default: int | None = None) -> int:
    value = config.get(key)
    if value is None:
        value = default
    require(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            f"{source}: {key} must be a non-negative integer, got {value!r}")
    return value


def _bool(config: dict, key: str, source: str, default: bool) -> bool:
    value = config.get(key)
    if value is None:
        return default
    require(isinstance(value, bool), f"{source}: {key} must be true or false, got {value!r}")
    return value


def _llama(config: dict, name: str, source: str, model_type: str) -> ModelSpec:
    base = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
    _require_keys(config, base, source, f"{model_type}")
    heads = _int(config, "num_attention_heads", source)
    qwen3 = model_type in ("qwen3", "qwen3_moe")
    fields = dict(
        hidden_size=_int(config, "hidden_size", source),
        num_layers=_int(config, "num_hidden_layers", source),
        num_heads=heads,
        num_kv_heads=_int(config, "num_key_value_heads", source, default=heads),
        intermediate_size=_int(config, "intermediate_size", source),
        vocab_size=_int(config, "vocab_size", source),
        head_dim=_int(config, "head_dim", source, default=QWEN3_DEFAULT_HEAD_DIM if qwen3 else 0),
        mlp="swiglu",  # every Llama-style MLP is gated (gate, up, down), whatever hidden_act is
        tied_embeddings=_bool(config, "tie_word_embeddings", source, default=False),
        max_position_embeddings=_int(config, "max_position_embeddings", source, default=0),
        # Qwen2 attention always has q/k/v biases; the others follow `attention_bias`.
        qkv_bias=model_type in ("qwen2", "qwen2_moe") or _bool(config, "attention_bias", source, default=False),
        qk_norm=qwen3,
    )
    if model_type in MOE_STYLE:
        fields.update(_moe_fields(config, source, model_type, fields["intermediate_size"]))
    return ModelSpec(name=name, **fields)


def _moe_fields(config: dict, source: str, model_type: str, intermediate: int) -> dict:
    if model_type == "mixtral":
        _require_keys(config, ("num_local_experts", "num_experts_per_tok"), source, "Mixtral")
        return dict(num_experts=_int(config, "num_local_experts", source),
                    experts_per_token=_int(config, "num_experts_per_tok", source),
                    moe_intermediate_size=intermediate)
    _require_keys(config, ("num_experts", "num_experts_per_tok", "moe_intermediate_size"), source, model_type)
    step = config.get("decoder_sparse_step", 1)
    require(step in (None, 1) and not config.get("mlp_only_layers"),
            f"{source}: unsupported architecture: dense layers mixed with MoE layers "
            f"(decoder_sparse_step {step!r}, mlp_only_layers {config.get('mlp_only_layers')!r}) are not modelled; "
            f"use decoder_sparse_step 1 and no mlp_only_layers")
    width = _int(config, "moe_intermediate_size", source)
    shared_width = _int(config, "shared_expert_intermediate_size", source, default=0)
    # Qwen2-MoE has one shared expert of several experts' width: count it in routed-expert units.
    require(width > 0 and shared_width % width == 0,
            f"{source}: shared_expert_intermediate_size {shared_width} is not a multiple of "
            f"moe_intermediate_size {width}: this shared-expert shape is not supported")
    return dict(num_experts=_int(config, "num_experts", source),
                experts_per_token=_int(config, "num_experts_per_tok", source),
                moe_intermediate_size=width, num_shared_experts=shared_width // width)


def _gpt2(config: dict, name: str, source: str) -> ModelSpec:
    _require_keys(config, ("n_embd", "n_layer", "n_head", "vocab_size"), source, "GPT-2")
    hidden = _int(config, "n_embd", source)
    heads = _int(config, "n_head", source)
    return ModelSpec(
        name=name, hidden_size=hidden, num_layers=_int(config, "n_layer", source), num_heads=heads,
        num_kv_heads=heads, intermediate_size=_int(config, "n_inner", source, default=4 * hidden),
        vocab_size=_int(config, "vocab_size", source), mlp="gelu",
        tied_embeddings=_bool(config, "tie_word_embeddings", source, default=True),
        max_position_embeddings=_int(config, "n_positions", source, default=0),
    )


__all__ = ["load_model", "model_from_config", "model_to_dict", "zoo_names", "zoo_metadata", "SUPPORTED_TYPES"]
