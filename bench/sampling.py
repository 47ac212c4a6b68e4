"""Completions per second of ``LMPolicy.sample`` against ``transformers``' ``generate`` on the same model.

Both sample the same batch (64 prompts of the arith and listops train splits by default) at temperature 1
with the same token budget, in interleaved rounds, on the CPU by default. ``generate`` is called directly
on the same model with left padding, KV cache and ``top_k=0`` (pure sampling, as ours); it is not asked
for scores, so it does less work than ``sample``, which also returns the log-prob of every sampled token.
The sandbox's time to judge the same completions (``Executor.run_batch``, cache off) gives its share of a
sample-and-judge step.

    python bench/sampling.py [--model default|PATH] [--batch 64] [--rounds 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from codegym.agents.policy import LMPolicy

import codegym


def _prompts(batch: int) -> list[codegym.Task]:
    tasks = list(codegym.load_suite("arith", n=400, seed=3, difficulty=[1, 2, 3]).split("train"))
    tasks += list(codegym.load_suite("listops", n=400, seed=3, difficulty=[1, 2, 3]).split("train"))
    step = max(1, len(tasks) // batch)
    return tasks[::step][:batch]


def _budget(policy: LMPolicy, tasks: list[codegym.Task]) -> int:
    longest = max(len(policy.tokenizer(t.reference, add_special_tokens=False)["input_ids"]) for t in tasks)
    return longest + 8


def _generate(policy: LMPolicy, prompts: list[str], max_new_tokens: int, seed: int) -> list[str]:
    tok = policy.tokenizer
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True).to(policy.device)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = policy.model.generate(
            **enc,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=policy.pad_token_id,
            eos_token_id=policy.eos_token_id,
        )
    return tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: longest reference + 8")
    args = parser.parse_args()

    policy = LMPolicy.from_pretrained(args.model, device=args.device)
    tasks = _prompts(args.batch)
    prompts = [t.prompt for t in tasks]
    budget = args.max_new_tokens or _budget(policy, tasks)
    params = sum(p.numel() for p in policy.model.parameters())
    print(
        f"model {args.model} ({params / 1e6:.2f}M params) on {policy.device}, batch {len(prompts)}, "
        f"max_new_tokens {budget}, torch threads {torch.get_num_threads()}"
    )
    policy.sample(prompts[:4], max_new_tokens=4, seed=0)  # warm-up
    _generate(policy, prompts[:4], 4, 0)
    ours, theirs, tokens_ours, sandbox = [], [], [], []
    executor = codegym.Executor(cache=False)
    try:
        for r in range(args.rounds):
            start = time.perf_counter()
            out = policy.sample(prompts, max_new_tokens=budget, seed=r)
            ours.append(len(prompts) / (time.perf_counter() - start))
            tokens_ours.append(int(out.mask.sum()))
            start = time.perf_counter()
            _generate(policy, prompts, budget, r)
            theirs.append(len(prompts) / (time.perf_counter() - start))
            start = time.perf_counter()
            results = executor.run_batch(list(zip(tasks, out.texts)))
            sandbox.append(time.perf_counter() - start)
            passed = sum(res.passed for res in results)
            print(
                f"round {r}: LMPolicy.sample {ours[-1]:7.1f} completions/s, generate {theirs[-1]:7.1f}/s, "
                f"ratio {ours[-1] / theirs[-1]:.2f}; sandbox {sandbox[-1] * 1e3:.0f} ms for the batch "
                f"({passed}/{len(results)} passed)"
            )
    finally:
        executor.close()
    ratio = statistics.median(o / t for o, t in zip(ours, theirs))
    sample_s = len(prompts) / statistics.median(ours)
    share = statistics.median(sandbox) / (sample_s + statistics.median(sandbox))
    print(
        f"median: sample {statistics.median(ours):.1f} completions/s "
        f"({statistics.median(tokens_ours) / sample_s:.0f} tokens/s), "
        f"generate {statistics.median(theirs):.1f}/s, "
        f"ratio {ratio:.2f} (target >= 1.0); sandbox share of sample+judge {share:.1%}"
    )


if __name__ == "__main__":
    main()
