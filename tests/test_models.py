"""The model zoo and config.json loading: derived sizes match the published ones."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import one_line_error

from planner.model_loading import load_model, model_from_config, zoo_metadata, zoo_names

FIXTURES = Path(__file__).parent / "fixtures" / "models"

# Published parameter counts in billions (total, active): the model cards' "Number of
# Parameters" (Qwen2.5, Qwen3), the Hugging Face safetensors totals shown on each repo
# page (Llama, DeepSeek distill) and, for Qwen3-30B-A3B, its card's "30.5B total, 3.3B
# activated".
PUBLISHED = {
    "llama-2-7b": (6.74, None),
    "llama-2-13b": (13.0, None),
    "llama-2-70b": (68.98, None),
    "llama-3.1-8b": (8.03, None),
    "llama-3.1-70b": (70.6, None),
    "qwen2.5-0.5b": (0.49, None),
    "qwen2.5-1.5b": (1.54, None),
    "qwen2.5-3b": (3.09, None),
    "qwen2.5-7b": (7.61, None),
    "qwen2.5-14b": (14.7, None),
    "qwen2.5-32b": (32.5, None),
    "qwen2.5-72b": (72.7, None),
    "qwen3-8b": (8.2, None),
    "qwen3-32b": (32.8, None),
    "qwen3-30b-a3b": (30.5, 3.3),
    "deepseek-r1-distill-qwen-7b": (7.62, None),
}


def test_zoo_has_the_required_models():
    assert set(PUBLISHED) <= set(zoo_names())


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_derived_parameter_counts_match_published(name):
    model = load_model(name)
    total, active = PUBLISHED[name]
    assert model.num_params / 1e9 == pytest.approx(total, rel=0.02)
    if active is None:
        assert model.active_params == model.num_params
    else:
        assert model.active_params / 1e9 == pytest.approx(active, rel=0.03)


@pytest.mark.parametrize("name", zoo_names())
def test_every_zoo_entry_cites_its_config(name):
    meta = zoo_metadata(name)
    assert meta["source"] == f"https://huggingface.co/{meta['hf_repo']}/blob/main/config.json"


def test_kv_cache_per_token_matches_reference_notes():
    # ../shared/reference/notes.md section 1: KiB per token in bf16 (Qwen2-7B = Qwen2.5-7B shape).
    kib = {"llama-2-7b": 512, "llama-2-13b": 800, "llama-2-70b": 320, "llama-3.1-8b": 128, "qwen2.5-7b": 56}
    for name, expected in kib.items():
        assert load_model(name).kv_bytes_per_token() / 1024 == expected


def test_qwen3_32b_head_dim_is_explicit():
    model = load_model("qwen3-32b")
    assert model.head_dim == 128 and model.q_size == 8192 != model.hidden_size


def test_qwen3_moe_shape():
    model = load_model("qwen3-30b-a3b")
    assert model.is_moe
    assert (model.num_experts, model.experts_per_token, model.moe_intermediate_size) == (128, 8, 768)
    assert (model.num_layers, model.hidden_size, model.num_heads, model.num_kv_heads) == (48, 2048, 32, 4)


def test_small_qwen_ties_embeddings_and_has_qkv_bias():
    assert load_model("qwen2.5-0.5b").tied_embeddings and not load_model("qwen2.5-7b").tied_embeddings
    small = load_model("qwen2.5-0.5b")
    assert small.qkv_bias and small.attention_extra_params_per_layer == small.q_size + 2 * small.kv_size


def test_lookup_is_case_insensitive_and_takes_repo_ids():
    assert load_model("Qwen2.5-7B").name == "qwen2.5-7b"
    assert load_model("meta-llama/Llama-2-70b-hf").name == "llama-2-70b"


# ---- config.json -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["qwen2.5-7b", "qwen3-30b-a3b"])
def test_real_config_reads_like_the_zoo(name):
    """The HF config.json and the zoo entry give the same spec (the zoo was copied from it)."""
    from_file = load_model(str(FIXTURES / name / "config.json"))
    assert from_file.name == name  # the folder's name
    assert dataclasses.replace(from_file, name="x") == dataclasses.replace(load_model(name), name="x")


def test_model_folder_path():
    assert load_model(str(FIXTURES / "qwen2.5-7b")).num_params == load_model("qwen2.5-7b").num_params


def test_mixtral_config():
    model = load_model(str(FIXTURES / "mixtral-8x7b"))
    # Mistral AI, "Mixtral of experts" (2023-12-11): 46.7B total, 12.9B used per token.
    assert model.num_params / 1e9 == pytest.approx(46.7, rel=0.01)
    assert model.active_params / 1e9 == pytest.approx(12.9, rel=0.01)
    assert model.moe_intermediate_size == 14336 and model.experts_per_token == 2


def test_qwen2_moe_shared_expert():
    model = load_model(str(FIXTURES / "qwen1.5-moe-a2.7b"))
    # Qwen/Qwen1.5-MoE-A2.7B model card: 14.3B total, 2.7B activated.
    assert model.num_shared_experts == 4  # one 5632-wide shared expert = 4 x 1408
    assert model.num_params / 1e9 == pytest.approx(14.3, rel=0.02)
    assert model.active_params / 1e9 == pytest.approx(2.7, rel=0.02)


def test_gpt2_config():
    model = load_model(str(FIXTURES / "gpt2"))
    assert (model.mlp, model.tied_embeddings, model.intermediate_size) == ("gelu", True, 3072)
    assert model.max_position_embeddings == 1024
    # 124M (openai-community/gpt2); biases and the position table are not counted.
    assert model.num_params / 1e6 == pytest.approx(124.4, rel=0.01)


def test_kv_heads_default_to_heads_and_head_dim_to_hidden_over_heads():
    config = {"model_type": "llama", "hidden_size": 512, "num_hidden_layers": 2, "num_attention_heads": 8,
              "intermediate_size": 1024, "vocab_size": 1000}
    model = model_from_config(config, "tiny")
    assert (model.num_kv_heads, model.head_dim, model.tied_embeddings) == (8, 64, False)


# ---- errors ----------------------------------------------------------------------------
def _error(name_or_path: str) -> str:
    return one_line_error(load_model, name_or_path)


def test_unknown_name_suggests_close_matches():
    message = _error("qwen2.5-8b")
    assert "unknown model 'qwen2.5-8b'" in message and "qwen2.5-7b" in message and "plan models" in message


def test_missing_file():
    assert "not found" in _error("/no/such/config.json")


def test_folder_without_config(tmp_path):
    assert "has no config.json" in _error(str(tmp_path))


def _config_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.json"
    path.write_text(text)
    message = _error(str(path))
    assert message.startswith(str(path))
    return message


def test_malformed_json_names_line_and_column(tmp_path):
    message = _config_error(tmp_path, '{\n  "hidden_size": 4096,\n  "num_hidden_layers" 32\n}\n')
    assert "malformed JSON at line 3, column 23" in message


def test_missing_keys_are_named(tmp_path):
    message = _config_error(tmp_path, json.dumps({"model_type": "llama", "hidden_size": 4096, "vocab_size": 32000}))
    assert "missing num_hidden_layers, num_attention_heads, intermediate_size" in message


def test_missing_moe_keys_are_named(tmp_path):
    config = json.loads((FIXTURES / "qwen3-30b-a3b" / "config.json").read_text())
    del config["num_experts"]
    assert "missing num_experts" in _config_error(tmp_path, json.dumps(config))


def test_unsupported_architecture(tmp_path):
    message = _config_error(tmp_path, json.dumps({"model_type": "t5", "architectures": ["T5ForConditionalGeneration"],
                                                  "d_model": 512}))
    assert "unsupported architecture 't5' (T5ForConditionalGeneration)" in message and "qwen3_moe" in message


def test_mixed_dense_and_moe_layers_are_unsupported(tmp_path):
    config = json.loads((FIXTURES / "qwen3-30b-a3b" / "config.json").read_text())
    config["mlp_only_layers"] = [0, 1]
    assert "dense layers mixed with MoE layers" in _config_error(tmp_path, json.dumps(config))


def test_wrong_type(tmp_path):
    config = json.loads((FIXTURES / "qwen2.5-7b" / "config.json").read_text())
    config["hidden_size"] = "3584"
    assert "hidden_size must be a non-negative integer, got '3584'" in _config_error(tmp_path, json.dumps(config))


def test_not_an_object(tmp_path):
    assert "expected a JSON object" in _config_error(tmp_path, "[1, 2]")
