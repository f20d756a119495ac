"""A plain single-process GRPO loop on the toy addition task (no Ray, no rlplan executor).

Two uses:

* the baseline of the executor-overhead benchmark: the same work as one executor
  iteration (generate with vLLM, score, old/ref log-probs, policy update, weight sync),
  done in one process with nothing in between, each part timed;
* the hyperparameters with which the tiny random Llama of :mod:`executor.tiny_model`
  learns the toy task from scratch (results: ``benchmarks/results/plain_loop.md``).

One step:

1. **generate** — vLLM ``LLM`` in this process samples ``--samples`` responses for each of
   ``--prompts`` prompts (token ids and the sampled tokens' log-probs);
2. **score** — a rule reward per response (exact match with the answer digit);
3. **log-prob** — the trainer's forward (no grad) gives the old log-probs (and, with a
   KL coefficient, the frozen reference's); GRPO group-normalised advantages;
4. **update** — ``--epochs`` passes over ``--mini-batches`` shuffled mini-batches, one AdamW
   step each, on :func:`algos.numerics_registry.actor_loss` (clipped policy loss, k3 KL
   to the reference when ``--kl-coef`` > 0);
5. **weight sync** — the trainer's full state dict into vLLM
   (``executor.workers.rollout.WeightLoadExtension.load_full_weights``).

The data and the reward are the executor's own, so the two runs do the same work: prompts
from :mod:`executor.toy_task` (``"a+b="`` -> the digit ``a+b``, 55 problems, rows balanced
by answer; or ``--data FILE``), handed out by :class:`executor.data.PromptStream` (a
seeded shuffle per epoch), responses decoded with special tokens kept and scored by
:func:`algos.rewards.score` (``--reward exact``: the response up to ``</s>`` is the answer).

The defaults are the settings that learn (see the results file): 64 prompts x 8 samples,
one-token responses, ``exact`` reward, AdamW lr 5e-4, entropy bonus 0.01, no KL, one
mini-batch, one epoch.

    python benchmarks/plain_loop.py --steps 200 --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
# One process: the engine core runs in this process, so collective_rpc passes the weights
# without pickling them to a second process (the executor's rollout workers do the same).
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

PARTS = ("generate", "score", "log_prob", "update", "weight_sync")


# ---- the loop ------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=64, help="prompts per step")
    p.add_argument("--samples", type=int, default=8, help="responses per prompt (the GRPO group)")
    p.add_argument("--max-tokens", type=int, default=1, help="response length limit (1: the answer digit)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-dir", default="/tmp/plain_loop_model",
                   help="tiny model folder (built with executor.tiny_model if it has no config.json)")
    p.add_argument("--out", default=None, help="write per-step metrics and times here (JSON)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--mini-batches", type=int, default=1, help="optimizer steps per epoch")
    p.add_argument("--micro-batch", type=int, default=0,
                   help="rows per forward/backward pass, gradients accumulated (0: the whole batch), "
                        "as the executor's plan layouts do")
    p.add_argument("--epochs", type=int, default=1, help="passes over each step's batch")
    p.add_argument("--kl-coef", type=float, default=0.0, help="k3 KL-to-reference loss coefficient (0: no reference)")
    p.add_argument("--entropy-coef", type=float, default=0.01, help="entropy bonus coefficient (the executor's too)")
    p.add_argument("--clip", type=float, default=0.2, help="PPO clip ratio")
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--data", default=None, help="prompts JSONL (default: executor.toy_task rows, --rows of them)")
    p.add_argument("--rows", type=int, default=1000, help="toy-task rows written when --data is not given")
    p.add_argument("--reward", default="exact", help="an algos.rewards name: exact, numeric, ...")
    p.add_argument("--target", type=float, default=0.8, help="report the first step whose reward (and its moving average) reaches this")
    p.add_argument("--window", type=int, default=10, help="moving-average window of the reward for --target")
    p.add_argument("--stop-at-target", action="store_true",
                   help="stop once the moving-average reward reaches --target")
    p.add_argument("--threads", type=int, default=0, help="torch threads for the trainer (0: leave as is)")
    p.add_argument("--log-every", type=int, default=1, help="print every this many steps")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from vllm import LLM, SamplingParams

    from algos.numerics import entropy_from_logits, log_probs_from_logits, minibatches, scores_to_token_rewards
    from algos.numerics_registry import actor_loss, compute_advantages, numerics_for
    from algos.rewards import score
    from executor.data import PromptStream, load_prompts
    from executor.toy_task import toy_problems, write_toy_task
    from executor.workers.batch import rollout_batch, select

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model_dir = Path(args.model_dir)
    if not (model_dir / "config.json").exists():
        from executor.tiny_model import build_tiny_model
        build_tiny_model(model_dir)

    t_setup = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pad_id = tokenizer.pad_token_id
    llm = LLM(model=str(model_dir), dtype="float32", seed=args.seed, gpu_memory_utilization=0.1,
              enforce_eager=True, max_model_len=64, max_num_seqs=max(256, args.prompts * args.samples),
              logprobs_mode="processed_logprobs",
              worker_extension_cls="executor.workers.rollout.WeightLoadExtension")
    policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    policy.config.use_cache = False
    policy.eval()
    reference = None
    numerics = numerics_for("grpo").with_options(clip_low=args.clip, entropy_coef=args.entropy_coef)
    if args.kl_coef > 0:
        numerics = numerics.with_options(kl_coef=args.kl_coef)
        reference = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        reference.requires_grad_(False)
    else:
        numerics = numerics.with_options(kl_coef=0.0, kl_placement="none")
    optimizer = torch.optim.AdamW(policy.parameters(), lr=args.lr, betas=(0.9, 0.999), weight_decay=0.0)
    setup_s = time.perf_counter() - t_setup

    data = Path(args.data) if args.data else write_toy_task(model_dir.parent / f"toy_{args.rows}_{args.seed}.jsonl",
                                                            args.rows, seed=args.seed)
    stream = PromptStream(load_prompts(data), args.prompts, seed=args.seed)
    problems = toy_problems()  # the greedy evaluation: every distinct problem once

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    def rewards(responses: list[list[int]], answers: list[str]) -> list[float]:
        return score(args.reward, [tokenizer.decode(r, skip_special_tokens=False) for r in responses], answers)

    def micro_batches(batch):
        """The batch in passes of ``--micro-batch`` rows (the whole of it with 0)."""
        from executor.workers.batch import batch_size, chunks

        return chunks(batch, args.micro_batch or batch_size(batch))

    def forward_log_probs(model, batch, with_entropy=False):
        """Per-token log-probs (and entropies), one pass per micro-batch."""
        parts = [forward_pass(model, mb, with_entropy) for mb in micro_batches(batch)]
        logp = torch.cat([p[0] for p in parts])
        return (logp, torch.cat([p[1] for p in parts])) if with_entropy else (logp, None)

    def forward_pass(model, batch, with_entropy=False):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    position_ids=batch["position_ids"], use_cache=False)
        P, R = batch["prompts"].shape[1], batch["responses"].shape[1]
        logits = out.logits[:, P - 1:P + R - 1].float() / args.temperature
        logp = log_probs_from_logits(logits, batch["responses"]) * batch["response_mask"]
        return (logp, entropy_from_logits(logits)) if with_entropy else (logp, None)

    def greedy_accuracy() -> float:
        outs = llm.generate([{"prompt_token_ids": encode(q)} for q, _ in problems],
                            SamplingParams(n=1, max_tokens=args.max_tokens, temperature=0.0), use_tqdm=False)
        got = rewards([list(o.outputs[0].token_ids) for o in outs], [a for _, a in problems])
        return sum(got) / len(got)

    history: list[dict] = []
    reached_at: dict = {"single_step": None, "moving_average": None}
    initial_greedy = greedy_accuracy()

    def summarise(history: list[dict], reached: dict, final_greedy: float | None) -> dict:
        n = len(history)
        skip = 1 if n > 1 else 0  # the first step carries one-off warm-up costs
        keys = (*PARTS, "step", "step_cpu")
        return {
            "args": vars(args), "platform": platform.platform(), "torch_threads": torch.get_num_threads(),
            "data": str(data), "data_rows": len(stream.examples), "setup_s": setup_s, "steps_run": n,
            "run_wall_s": time.perf_counter() - t_run, "reached_target": reached,
            "greedy_accuracy": {"start": initial_greedy, "end": final_greedy},
            "mean_step_times_s": {k: sum(h["times"][k] for h in history[skip:]) / max(n - skip, 1) for k in keys},
            "median_step_times_s": {k: statistics.median(h["times"][k] for h in history[skip:] or history)
                                    for k in keys},
            "logp_diff_mean_over_steps": sum(h["logp_diff_mean"] for h in history) / n,
            "logp_diff_max_over_steps": max(h["logp_diff_max"] for h in history),
            "history": history,
        }

    def dump(summary: dict) -> None:
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"setup {setup_s:.1f}s; {len(stream.examples)} rows from {data}; greedy accuracy at start {initial_greedy:.3f}",
          flush=True)
    t_run = time.perf_counter()
    cpu_run = time.process_time()
    for step in range(1, args.steps + 1):
        times = {}
        cpu0 = time.process_time()
        # 1. generate
        t0 = time.perf_counter()
        examples = stream.next_batch()
        params = [SamplingParams(n=args.samples, max_tokens=args.max_tokens, temperature=args.temperature,
                                 logprobs=0, seed=args.seed * 1_000_003 + step + i)  # as the executor's
                  for i in range(args.prompts)]
        outputs = llm.generate([{"prompt_token_ids": encode(e.prompt)} for e in examples], params, use_tqdm=False)
        prompts, responses, vllm_logps, index = [], [], [], []
        for i, out in enumerate(outputs):
            for sample in out.outputs:
                tokens = list(sample.token_ids)
                prompts.append(list(out.prompt_token_ids))
                responses.append(tokens)
                vllm_logps.append([lp[t].logprob for t, lp in zip(tokens, sample.logprobs)])
                index.append(i)
        batch = rollout_batch(prompts, responses, vllm_logps, index, pad_id)
        times["generate"] = time.perf_counter() - t0

        # 2. score
        t0 = time.perf_counter()
        scores = torch.tensor(rewards(responses, [examples[i].answer for i in index]), dtype=torch.float32)
        times["score"] = time.perf_counter() - t0

        # 3. old (and reference) log-probs, advantages
        t0 = time.perf_counter()
        mask = batch["response_mask"]
        with torch.no_grad():
            old_logp, entropy = forward_log_probs(policy, batch, with_entropy=True)
            ref_logp = forward_log_probs(reference, batch)[0] if reference is not None else None
        token_rewards = scores_to_token_rewards(scores, mask)
        advantages = compute_advantages(numerics, token_rewards, mask, group_ids=batch["prompt_index"]).advantages
        times["log_prob"] = time.perf_counter() - t0

        # 4. update
        t0 = time.perf_counter()
        policy.train()
        update_metrics: list[dict] = []
        for mb in minibatches(len(responses), args.mini_batches, args.epochs, seed=args.seed * 7919 + step):
            part = select(batch, mb.indices)
            part.update(old_logp=old_logp[mb.indices], advantages=advantages[mb.indices])
            if ref_logp is not None:
                part["ref_logp"] = ref_logp[mb.indices]
            optimizer.zero_grad(set_to_none=True)
            for piece in micro_batches(part):  # gradients accumulate, each pass weighted by its rows
                logp, mb_entropy = forward_pass(policy, piece, with_entropy=args.entropy_coef > 0)
                result = actor_loss(numerics, logp, piece["old_logp"], piece["advantages"], piece["response_mask"],
                                    ref_log_probs=piece.get("ref_logp"), entropy=mb_entropy)
                (result.loss * len(piece["old_logp"]) / len(mb.indices)).backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(),
                                                       args.grad_clip if args.grad_clip > 0 else float("inf"))
            optimizer.step()
            update_metrics.append({**result.metrics, "grad_norm": float(grad_norm)})
        policy.eval()
        times["update"] = time.perf_counter() - t0

        # 5. weight sync
        t0 = time.perf_counter()
        weights = {k: v.detach().contiguous() for k, v in policy.state_dict().items()}
        llm.collective_rpc("load_full_weights", args=(weights,))
        times["weight_sync"] = time.perf_counter() - t0

        times["step"] = sum(times[p] for p in PARTS)
        times["step_cpu"] = time.process_time() - cpu0
        diff = ((old_logp - batch["rollout_log_probs"]).abs() * mask)
        tokens = mask.sum().clamp(min=1)
        elapsed = time.perf_counter() - t_run
        group_std = scores.view(args.prompts, args.samples).std(dim=1)
        record = {
            "step": step, "elapsed_s": elapsed, "cpu_s": time.process_time() - cpu_run, "reward_mean": scores.mean().item(),
            "frac_groups_informative": (group_std > 0).float().mean().item(),
            "response_len_mean": mask.sum(1).mean().item(),
            "entropy_mean": (entropy * mask).sum().item() / tokens.item(),
            "logp_diff_mean": diff.sum().item() / tokens.item(), "logp_diff_max": diff.max().item(),
            **{k: sum(m[k] for m in update_metrics) / len(update_metrics) for k in update_metrics[0]},
            "times": times,
        }
        history.append(record)
        window = history[-args.window:]
        record["reward_ma"] = sum(h["reward_mean"] for h in window) / len(window)
        if reached_at["single_step"] is None and record["reward_mean"] >= args.target:
            reached_at["single_step"] = {"step": step, "elapsed_s": elapsed, "cpu_s": record["cpu_s"]}
        if reached_at["moving_average"] is None and len(window) == args.window and record["reward_ma"] >= args.target:
            reached_at["moving_average"] = {"step": step, "elapsed_s": elapsed, "cpu_s": record["cpu_s"]}
        if step % args.log_every == 0 or step == 1:
            print(f"step {step:4d} t={elapsed:6.1f}s cpu={record['cpu_s']:6.1f}s reward {record['reward_mean']:.3f} "
                  f"(ma {record['reward_ma']:.3f}) ent {record['entropy_mean']:.2f} "
                  f"|dlogp| {record['logp_diff_mean']:.1e}/{record['logp_diff_max']:.1e} "
                  f"clip {record['actor/clipfrac']:.2f} | " + " ".join(f"{p} {times[p]*1e3:.0f}" for p in PARTS)
                  + f" = {times['step']*1e3:.0f} ms (cpu {times['step_cpu']*1e3:.0f})", flush=True)
        if step % 25 == 0:
            dump(summarise(history, reached_at, None))
        if args.stop_at_target and reached_at["moving_average"] is not None:
            break

    summary = summarise(history, reached_at, greedy_accuracy())
    mean_times = summary["mean_step_times_s"]
    print(f"reached {args.target}: {reached_at}; greedy accuracy {initial_greedy:.3f} -> "
          f"{summary['greedy_accuracy']['end']:.3f}")
    print("mean step (ms, excluding step 1): " + " ".join(f"{k} {v*1e3:.1f}" for k, v in mean_times.items()))
    print("median step (ms, excluding step 1): " + " ".join(f"{k} {v*1e3:.1f}"
                                                          for k, v in summary["median_step_times_s"].items()))
    dump(summary)
    return summary


if __name__ == "__main__":
    main()
