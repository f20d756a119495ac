"""The ``Workload`` of one RL iteration and the response-length distribution it samples.

Rollout time is decided by the longest responses (a decode step serves every unfinished
sequence, and the iteration waits for the last one), so the length is a distribution, not
a number. Two views of it are offered:

- ``planning_lengths(n)``: n deterministic, representative lengths (quantiles), for the
  planner, whose answer must not change from one call to the next;
- ``sample(n, rng)``: seeded random lengths, for the simulator's dry runs.

Responses longer than ``max_len`` are cut there (vLLM ``max_tokens``, verl
``data.max_response_length``), so the clipped distribution keeps a mass at ``max_len``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

from planner.errors import PlanError, require

KINDS = ("fixed", "normal", "lognormal", "empirical")
SPEC_FORMS = "fixed:1024, normal:600,200, lognormal:400,250 (mean,std), optional ,max=N / ,min=N, or file:PATH"
_STD_NORMAL = NormalDist()
_OPTION = re.compile(r",\s*(max|min)\s*=\s*([^,]*)\s*$")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _pdf(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


@dataclass(frozen=True)
class LengthDistribution:
    """Response lengths in tokens, clipped to ``[min_len, max_len]``."""

    kind: str
    """fixed | normal | lognormal | empirical."""
    mean: float
    """fixed: the length; normal/lognormal: mean of the unclipped distribution; empirical: mean of ``values``."""
    std: float = 0.0
    """Standard deviation of the unclipped distribution (empirical: of ``values``)."""
    max_len: int = 1024
    """Cap on a response (vLLM max_tokens); longer responses are truncated here."""
    min_len: int = 1
    values: tuple[int, ...] = ()
    """empirical: the observed lengths."""

    def __post_init__(self) -> None:
        require(self.kind in KINDS, f"unknown length distribution {self.kind!r}: use one of {', '.join(KINDS)}")
        for name in ("max_len", "min_len"):
            value = getattr(self, name)
            require(_is_int(value) and value >= 1, f"response {name} must be a positive integer, got {value!r}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            require(isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value),
                    f"response {name} must be a finite number, got {value!r}")
        require(self.max_len >= self.min_len,
                f"response max_len {self.max_len} is below min_len {self.min_len}: raise max or lower min")
        if self.kind == "empirical":
            require(len(self.values) > 0, "an empirical length distribution needs at least one observed length")
            require(all(_is_int(v) and v >= 1 for v in self.values),
                    "empirical lengths must be positive integers: fix the length file")
            object.__setattr__(self, "values", tuple(int(v) for v in self.values))
            object.__setattr__(self, "mean", float(np.mean(self.values)))
            object.__setattr__(self, "std", float(np.std(self.values)))
            return
        require(not self.values, f"values are only for empirical lengths, not {self.kind}: drop them")
        require(self.mean > 0, f"response mean length must be positive, got {self.mean}")
        if self.kind == "fixed":
            require(float(self.mean).is_integer(), f"a fixed response length must be an integer, got {self.mean}")
            require(self.min_len <= self.mean <= self.max_len,
                    f"fixed response length {self.mean:g} is outside [{self.min_len}, {self.max_len}]: "
                    f"raise max to at least {self.mean:g}")
        else:
            require(self.std > 0, f"a {self.kind} length needs std > 0, got {self.std}: use fixed:N for a constant length")

    # ---- the two views -----------------------------------------------------------------
    def planning_lengths(self, n: int) -> np.ndarray:
        """``n`` representative lengths: the clipped distribution's quantiles at (i+0.5)/n, ascending."""
        require(_is_int(n) and n >= 0, f"number of lengths must be a non-negative integer, got {n!r}")
        return _planning_lengths(self, int(n)).copy()

    def _quantiles(self, n: int) -> np.ndarray:
        if self.kind == "fixed":
            return np.full(n, int(self.mean), dtype=np.int64)
        q = (np.arange(n) + 0.5) / n
        if self.kind == "empirical":
            ordered = np.sort(self._clipped_values())
            return ordered[np.minimum((q * len(ordered)).astype(np.int64), len(ordered) - 1)]
        z = np.array([_STD_NORMAL.inv_cdf(float(p)) for p in q])
        if self.kind == "normal":
            raw = self.mean + self.std * z
        else:
            mu, sigma = self._log_params()
            raw = np.exp(mu + sigma * z)
        return self._clip(raw)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` random lengths drawn with ``rng`` (seed it for reproducible runs)."""
        require(_is_int(n) and n >= 0, f"number of lengths must be a non-negative integer, got {n!r}")
        if self.kind == "fixed":
            return np.full(n, int(self.mean), dtype=np.int64)
        if self.kind == "empirical":
            return rng.choice(self._clipped_values(), size=n, replace=True)
        if self.kind == "normal":
            return self._clip(rng.normal(self.mean, self.std, size=n))
        mu, sigma = self._log_params()
        return self._clip(rng.lognormal(mu, sigma, size=n))

    @functools.cached_property
    def expected(self) -> float:
        """Mean length after clipping to [min_len, max_len] (in closed form for normal and lognormal)."""
        lo, hi = float(self.min_len), float(self.max_len)
        if self.kind == "fixed":
            return float(self.mean)
        if self.kind == "empirical":
            return float(self._clipped_values().mean())
        if self.kind == "normal":
            a, b = (lo - self.mean) / self.std, (hi - self.mean) / self.std
            inside = self.mean * (_cdf(b) - _cdf(a)) + self.std * (_pdf(a) - _pdf(b))
        else:
            # E[X; lo<=X<=hi] of a lognormal: e^(mu+s^2/2) * [Phi((ln hi-mu-s^2)/s) - Phi((ln lo-mu-s^2)/s)].
            mu, s = self._log_params()
            a, b = (math.log(lo) - mu) / s, (math.log(hi) - mu) / s
            inside = math.exp(mu + s * s / 2) * (_cdf(b - s) - _cdf(a - s))
        return lo * _cdf(a) + inside + hi * (1.0 - _cdf(b))

    @property
    def truncated_fraction(self) -> float:
        """Share of responses that hit ``max_len`` (are cut by max_tokens)."""
        if self.kind == "fixed":
            return 1.0 if self.mean == self.max_len else 0.0
        if self.kind == "empirical":
            return float(np.mean(np.asarray(self.values) >= self.max_len))
        if self.kind == "normal":
            return 1.0 - _cdf((self.max_len - self.mean) / self.std)
        mu, s = self._log_params()
        return 1.0 - _cdf((math.log(self.max_len) - mu) / s)

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"fixed {int(self.mean)}"
        if self.kind == "empirical":
            return f"empirical ({len(self.values)} lengths, mean {self.mean:.0f}, max {self.max_len})"
        return f"{self.kind}(mean {self.mean:g}, std {self.std:g}, max {self.max_len})"

    # ---- helpers -----------------------------------------------------------------------
    def _log_params(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal, from the lognormal's own mean and std."""
        sigma2 = math.log1p((self.std / self.mean) ** 2)
        return math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2)

    def _clip(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(raw), self.min_len, self.max_len).astype(np.int64)

    def _clipped_values(self) -> np.ndarray:
        return np.clip(np.asarray(self.values, dtype=np.int64), self.min_len, self.max_len)

    # ---- input and output ----------------------------------------------------------------
    @classmethod
    def parse(cls, spec: str, max_len: int | None = None) -> "LengthDistribution":
        """Read a CLI spec: ``fixed:1024``, ``normal:600,200``, ``lognormal:400,250,max=1024``, ``file:PATH``.

        The cap is ``,max=N`` in the spec, else ``max_len``, else: the length for fixed, the
        longest observation for a file, and the 99.9th percentile (rounded up) for normal and
        lognormal, so that about one response in a thousand is truncated.
        """
        text = str(spec).strip()
        kind, sep, rest = text.partition(":")
        kind = kind.strip().lower()
        require(bool(sep) and kind in ("fixed", "normal", "lognormal", "file"),
                f"cannot read response length {text!r}: use {SPEC_FORMS}")
        options: dict[str, int] = {}
        while kind != "file" and (match := _OPTION.search(rest)):
            key, value = match.group(1), match.group(2).strip()
            require(value.isdigit() and int(value) >= 1, f"response length option {key}={value!r} must be a positive integer")
            options.setdefault(key, int(value))
            rest = rest[:match.start()]
        if "max" in options and max_len is not None and options["max"] != max_len:
            raise PlanError(f"response max given twice ({options['max']} in {text!r} and {max_len}): give it once")
        cap = options.get("max", max_len)
        floor = options.get("min", 1)
        if kind == "file":
            values = _read_lengths(rest.strip())
            return cls("empirical", 0.0, max_len=cap or max(values), min_len=floor, values=values)
        numbers = _numbers(rest, text)
        if kind == "fixed":
            require(len(numbers) == 1, f"fixed takes one length, as in fixed:1024; got {text!r}")
            return cls("fixed", numbers[0], max_len=cap or max(int(numbers[0]), floor), min_len=floor)
        require(len(numbers) == 2, f"{kind} takes a mean and a std, as in {kind}:400,250; got {text!r}")
        mean, std = numbers
        if cap is None:
            require(mean > 0 and std > 0, f"{kind} needs a positive mean and std, got {text!r}")
            cap = cls(kind, mean, std, max_len=10**9, min_len=floor)._quantile_cap(0.999)
        return cls(kind, mean, std, max_len=cap, min_len=floor)

    def _quantile_cap(self, p: float) -> int:
        z = _STD_NORMAL.inv_cdf(p)
        if self.kind == "normal":
            value = self.mean + self.std * z
        else:
            mu, sigma = self._log_params()
            value = math.exp(mu + sigma * z)
        return max(self.min_len, math.ceil(value))

    def to_dict(self) -> dict:
        data = {"kind": self.kind, "mean": self.mean, "std": self.std, "max_len": self.max_len, "min_len": self.min_len}
        if self.kind == "empirical":
            data["values"] = list(self.values)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "LengthDistribution":
        _check_keys(data, ("kind", "mean", "std", "max_len", "min_len", "values"), "response length")
        values = tuple(data.get("values", ()))
        return cls(kind=data.get("kind"), mean=data.get("mean", 0.0), std=data.get("std", 0.0),
                   max_len=data.get("max_len", 1024), min_len=data.get("min_len", 1), values=values)


DEFAULT_RESPONSE = LengthDistribution("lognormal", mean=400.0, std=250.0, max_len=1024)
"""Long-tailed RL responses under verl's example cap of 1024 tokens.

The cap and batch shape follow verl's examples/grpo_trainer/run_qwen2-7b_seq_balance.sh
(prompt 512, response 1024, batch 1024, n=5). The shape is right-skewed because RL
responses have a long tail that decides rollout time (verl PR #1826 partial rollout and
RFC #4348; DAPO, Yu et al. 2025, "Overlong Reward Shaping"). Mean 400 and std 250 are
our choice, not a measurement: they truncate about 2.7% of responses at 1024. Replace them
with ``file:PATH`` from a real run when you have one.
"""


@dataclass(frozen=True)
class Workload:
    """What one RL iteration processes (verl's data and actor knobs in brackets)."""

    prompts: int = 1024
    """Prompts per iteration [data.train_batch_size]."""
    samples_per_prompt: int = 5
    """Responses sampled per prompt [actor_rollout_ref.rollout.n]."""
    prompt_len: int = 512
    """Tokens per prompt [data.max_prompt_length]."""
    response: LengthDistribution = DEFAULT_RESPONSE
    """Response lengths; the cap is data.max_response_length."""
    ppo_epochs: int = 1
    """Passes over the batch per iteration [actor.ppo_epochs]."""
    mini_batches: int = 4
    """Optimizer steps per epoch [train_batch_size / ppo_mini_batch_size, e.g. 1024/256]."""
    oversample: float = 1.0
    """DAPO dynamic sampling: generate this many times the prompts, train on the kept ones
    [data.gen_batch_size / data.train_batch_size; verl's DAPO docs use 1536/512 = 3]."""

    def __post_init__(self) -> None:
        for name in ("prompts", "samples_per_prompt", "prompt_len", "ppo_epochs", "mini_batches"):
            value = getattr(self, name)
            require(_is_int(value) and value >= 1, f"workload {name} must be a positive integer, got {value!r}")
        require(isinstance(self.response, LengthDistribution),
                f"workload response must be a LengthDistribution, got {type(self.response).__name__}")
        require(self.prompts % self.mini_batches == 0,
                f"mini_batches={self.mini_batches} does not divide prompts={self.prompts}: "
                f"use a divisor of {self.prompts} (verl: train_batch_size must be a multiple of ppo_mini_batch_size)")
        require(isinstance(self.oversample, (int, float)) and not isinstance(self.oversample, bool)
                and math.isfinite(self.oversample) and self.oversample >= 1,
                f"oversample must be a number >= 1 (1 = no dynamic sampling), got {self.oversample!r}")

    @property
    def num_samples(self) -> int:
        """Sequences trained on per iteration."""
        return self.prompts * self.samples_per_prompt

    @property
    def generated_prompts(self) -> int:
        """Prompts generated for per iteration: ``prompts * oversample`` rounded up (whole groups)."""
        return math.ceil(round(self.prompts * self.oversample, 6))

    @property
    def num_generated(self) -> int:
        """Sequences generated per iteration (equals ``num_samples`` unless oversampling)."""
        return self.generated_prompts * self.samples_per_prompt

    @property
    def max_seq_len(self) -> int:
        return self.prompt_len + self.response.max_len

    def describe(self) -> str:
        text = (f"{self.prompts} prompts x {self.samples_per_prompt} samples, prompt {self.prompt_len}, "
                f"response {self.response.describe()}, {self.ppo_epochs} epoch{'s' if self.ppo_epochs > 1 else ''} "
                f"x {self.mini_batches} mini-batches")
        return text + (f", oversample {self.oversample:g}" if self.oversample != 1 else "")

    def to_dict(self) -> dict:
        return {"prompts": self.prompts, "samples_per_prompt": self.samples_per_prompt, "prompt_len": self.prompt_len,
                "response": self.response.to_dict(), "ppo_epochs": self.ppo_epochs,
                "mini_batches": self.mini_batches, "oversample": self.oversample}

    @classmethod
    def from_dict(cls, data: dict) -> "Workload":
        _check_keys(data, tuple(cls.__dataclass_fields__), "workload")
        fields_ = dict(data)
        if "response" in fields_:
            fields_["response"] = LengthDistribution.from_dict(fields_["response"])
        return cls(**fields_)


@functools.lru_cache(maxsize=64)
def _planning_lengths(dist: LengthDistribution, n: int) -> np.ndarray:
    """Cached: the search asks for the same quantiles of the same distribution many times."""
    return dist._quantiles(n)


# ---- CLI flags shared by every command that takes a workload -----------------------------
def add_workload_arguments(parser) -> None:
    """Add ``--prompts --samples --prompt-len --response-len --response-dist --max-response-len --epochs --mini-batches --oversample``."""
    group = parser.add_argument_group("workload (defaults: verl's GRPO example shape)")
    group.add_argument("--prompts", type=int, help="prompts per iteration (train_batch_size; default 1024)")
    group.add_argument("--samples", type=int, help="responses per prompt (rollout.n; default 5)")
    group.add_argument("--prompt-len", type=int, help="prompt tokens (default 512)")
    group.add_argument("--response-len", type=int, metavar="L", help="every response is exactly L tokens (same as --response-dist fixed:L)")
    group.add_argument("--response-dist", "--response", dest="response", metavar="SPEC",
                       help=f"response lengths: {SPEC_FORMS} (default lognormal:400,250,max=1024)")
    group.add_argument("--max-response-len", type=int, help="cap on response tokens (max_response_length)")
    group.add_argument("--epochs", type=int, help="PPO epochs per iteration (default 1)")
    group.add_argument("--mini-batches", type=int, help="optimizer steps per epoch (default 4)")
    group.add_argument("--oversample", type=float, help="dynamic sampling: generate this many times the prompts (dapo)")


def workload_from_args(args) -> Workload:
    """Build a :class:`Workload` from the flags of :func:`add_workload_arguments`; unset flags keep defaults."""
    if args.response_len is not None and args.response is not None:
        raise PlanError("give either --response-len (fixed lengths) or --response-dist, not both")
    if args.response_len is not None:
        response = LengthDistribution.parse(f"fixed:{args.response_len}", args.max_response_len)
    elif args.response is not None:
        response = LengthDistribution.parse(args.response, args.max_response_len)
    elif args.max_response_len is not None:
        response = LengthDistribution.parse(f"lognormal:{DEFAULT_RESPONSE.mean:g},{DEFAULT_RESPONSE.std:g}",
                                            args.max_response_len)
    else:
        response = DEFAULT_RESPONSE
    given = {"prompts": args.prompts, "samples_per_prompt": args.samples, "prompt_len": args.prompt_len,
             "ppo_epochs": args.epochs, "mini_batches": args.mini_batches, "oversample": args.oversample}
    return Workload(response=response, **{k: v for k, v in given.items() if v is not None})


# ---- private helpers ----------------------------------------------------------------------
def _numbers(rest: str, spec: str) -> list[float]:
    try:
        numbers = [float(part) for part in rest.split(",")]
    except ValueError:
        raise PlanError(f"cannot read numbers in response length {spec!r}: use {SPEC_FORMS}") from None
    require(all(math.isfinite(x) for x in numbers), f"response length {spec!r} has a non-finite number")
    return numbers


def _read_lengths(path_text: str) -> tuple[int, ...]:
    """One length per line, or JSONL records with a ``response_length`` or ``length`` field."""
    path = Path(path_text).expanduser()
    require(path.is_file(), f"response length file {path_text!r} not found: give a text file with one length per line")
    values = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        values.append(_read_length(line, f"{path_text}:{number}"))
    require(bool(values), f"response length file {path_text!r} has no lengths: one integer per line, or JSONL")
    return tuple(values)


def _read_length(line: str, where: str) -> int:
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise PlanError(f"{where}: not valid JSON: fix the line or use one integer per line") from None
        key = next((k for k in ("response_length", "length") if k in record), None)
        require(key is not None, f"{where}: a JSONL record needs a response_length or length field")
        value = record[key]
    else:
        value = line
    if isinstance(value, str) and value.isdigit():
        return _positive(int(value), where)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        return _positive(int(value), where)
    raise PlanError(f"{where}: {value!r} is not an integer length")


def _positive(length: int, where: str) -> int:
    require(length >= 1, f"{where}: length {length} must be positive")
    return length


def _check_keys(data: dict, known: tuple[str, ...], what: str) -> None:
    require(isinstance(data, dict), f"{what} must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(known))
    require(not unknown, f"unknown {what} field(s) {', '.join(unknown)}: known are {', '.join(known)}")
