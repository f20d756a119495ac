"""A tiny Llama-style model and a character-level tokenizer, saved as a normal HF folder.

The executor's tests and the CPU demo need a real causal LM that loads everywhere the
real ones do (``transformers.AutoModelForCausalLM``, ``AutoTokenizer`` and vLLM) but
starts in seconds. :func:`build_tiny_model` writes one with this project's own code:
random init from a seed, float32 weights in ``model.safetensors``, and a tokenizer of one
token per character (digits, letters, space, newline, ``+ - * = ?`` and a little
punctuation) plus the special tokens ``<pad> <s> </s> <unk> <think> </think>`` that a toy
arithmetic task needs. The folder is also a valid ``--actor`` for the planner (it reads
``config.json``).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, THINK_OPEN, THINK_CLOSE)
CHARACTERS = string.digits + "+-*=?" + string.ascii_letters + " \n.,:;!()'\"/<>_#%"
"""Every character the tokenizer knows, one token each (the tags above are whole tokens)."""


@dataclass(frozen=True)
class TinyModelConfig:
    """Shape of the tiny Llama; the defaults load in vLLM-CPU in well under a minute."""

    hidden_size: int = 128
    intermediate_size: int = 256
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    """Grouped-query attention, so TP=2 splits both the query and the KV heads."""
    max_position_embeddings: int = 512
    seed: int = 0
    dtype: str = "float32"
    """float32 so that weights synced from the trainer are bit-equal in vLLM."""


def vocabulary() -> dict[str, int]:
    """Token -> id: the special tokens first, then one id per character."""
    tokens = list(SPECIAL_TOKENS) + list(CHARACTERS)
    assert len(set(tokens)) == len(tokens), "duplicate token in the vocabulary"
    return {tok: i for i, tok in enumerate(tokens)}


def build_tokenizer():
    """A ``PreTrainedTokenizerFast`` of one token per character (no merges, no pre-tokenizer)."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = vocabulary()
    # BPE with no merges splits text into single characters; Fuse joins them back verbatim.
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    core.decoder = decoders.Fuse()
    core.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK,
        additional_special_tokens=[THINK_OPEN, THINK_CLOSE], model_max_length=TinyModelConfig.max_position_embeddings,
        clean_up_tokenization_spaces=False,
    )


def llama_config(cfg: TinyModelConfig, tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads, max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, torch_dtype=cfg.dtype,
    )


def build_tiny_model(out_dir: str | Path, cfg: TinyModelConfig = TinyModelConfig()) -> Path:
    """Write a randomly initialised tiny Llama and its tokenizer to ``out_dir``; return it.

    The same ``cfg`` (seed included) always gives the same weights.
    """
    import torch
    from transformers import LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(llama_config(cfg, tokenizer)).to(getattr(torch, cfg.dtype))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _force_dtype(out / "config.json", cfg.dtype)
    return out


def _force_dtype(config_path: Path, dtype: str) -> None:
    """Record the dtype under both names (``dtype``, newer; ``torch_dtype``, older readers)."""
    data = json.loads(config_path.read_text())
    data["dtype"] = data["torch_dtype"] = dtype
    config_path.write_text(json.dumps(data, indent=2) + "\n")
