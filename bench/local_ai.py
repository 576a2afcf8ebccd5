"""local-ai against sentence-transformers, the reference implementation, on the same model,
texts, batch sizes and machine, in one run. Prints texts/s per batch size and the ratio.

Each line times both sides ROUNDS times, alternating (ours, theirs, ours, ...), and keeps each
side's best round, as `timeit` does: the best round is the one least disturbed by the rest of the
machine, and alternating gives both sides the same chances of a quiet moment.

    python local_ai.py LOCAL_AI_URL MODEL_DIR
Run by `scripts/bench local-ai`, in the reference virtualenv.
"""

import json
import math
import statistics
import sys
import time
import urllib.request

import torch
from sentence_transformers import SentenceTransformer

BATCHES = [1, 8, 32, 100]
ROUNDS = 3
MODEL = "@cf/baai/bge-small-en-v1.5"

SUBJECTS = ["The council", "A spokesperson", "Police", "The company", "Researchers", "The court",
            "Local residents", "The minister", "Firefighters", "The university"]
VERBS = ["announced", "denied", "confirmed", "questioned", "reported", "criticised", "approved",
         "postponed", "investigated", "welcomed"]
OBJECTS = ["the new budget", "a plan for the harbour", "three arrests", "rising rents",
           "the election results", "a delay to the railway", "the merger", "a flood warning",
           "the school closures", "record profits"]


def rounded_down(ratio):
    """A ratio with two decimals, rounded down, as every ratio held to a floor is shown: 1.1997
    against ">= 1.20" shows as 1.19, not as a 1.20 that is "NOT met". The nudge keeps an exact
    1.15 (114.99999999999999 times 100) from showing as 1.14."""
    return f"{math.floor(ratio * 100 + 1e-9) / 100:.2f}"


def short_texts(n):
    return [f"{SUBJECTS[i % 10]} {VERBS[(i // 10) % 10]} {OBJECTS[(i // 100 + i) % 10]} on day {i}."
            for i in range(n)]


def long_texts(n):
    """Texts of about 200 tokens: ten or so generated sentences each."""
    texts = []
    for i in range(n):
        sentences = [f"{SUBJECTS[(i + k) % 10]} {VERBS[(i * 3 + k) % 10]} {OBJECTS[(i + 2 * k) % 10]} "
                     f"after a long meeting that lasted well into the evening, said sources close to item {i}-{k}."
                     for k in range(9)]
        texts.append(" ".join(sentences))
    return texts


def local_ai_pass(url):
    """A function that embeds texts through local-ai, `batch` at a time."""
    endpoint = f"{url}/client/v4/accounts/bench/ai/run/{MODEL}"

    def call(chunk):
        body = json.dumps({"text": chunk}).encode()
        request = urllib.request.Request(endpoint, data=body, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request) as response:
            result = json.load(response)
        assert result["success"] and len(result["result"]["data"]) == len(chunk)

    def run(texts, batch):
        for i in range(0, len(texts), batch):
            call(texts[i:i + batch])

    return run


def reference_pass(model):
    """A function that embeds texts through sentence-transformers, `batch` at a time."""
    def run(texts, batch):
        model.encode(texts, batch_size=batch, normalize_embeddings=True)

    return run


def best_rates(sides, texts, batch):
    """Texts/s of each side: warmed up, then its best of ROUNDS rounds, the sides alternating."""
    for run in sides:
        run(texts[:batch], batch)
    best = [0.0] * len(sides)
    for _ in range(ROUNDS):
        for k, run in enumerate(sides):
            started = time.perf_counter()
            run(texts, batch)
            best[k] = max(best[k], len(texts) / (time.perf_counter() - started))
    return best


def main():
    url, model_dir = sys.argv[1], sys.argv[2]
    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = 512
    sets = [("short", short_texts(400)), ("~200 tokens", long_texts(100))]
    sides = [local_ai_pass(url), reference_pass(model)]
    print(f"local-ai vs sentence-transformers: all-MiniLM-L6-v2 on the CPU, {torch.get_num_threads()} threads, "
          f"each side's best of {ROUNDS} alternating rounds")
    print(f"{'texts':<12} {'tokens':>6} {'batch':>5} {'local-ai/s':>11} {'s-t/s':>9} {'ratio':>6}")
    ratios = {}
    for name, texts in sets:
        tokens = statistics.mean(len(model.tokenizer(t)["input_ids"]) for t in texts)
        for batch in BATCHES:
            ours, theirs = best_rates(sides, texts, batch)
            ratios[(name, batch)] = ours / theirs
            print(f"{name:<12} {tokens:>6.0f} {batch:>5} {ours:>11.1f} {theirs:>9.1f} {rounded_down(ours / theirs):>6}")
    # Targets (issue 14): 1.2 times the reference at batch 32 for both kinds of text, and at
    # least as fast for one ~200-token text at a time (a pass alone on the machine, which must
    # use every core).
    targets = [((name, 32), 1.2) for name, _ in sets] + [(("~200 tokens", 1), 1.0)]
    met = all(ratios[t] >= floor for t, floor in targets)
    print(f"target: local-ai >= 1.2 x sentence-transformers at batch 32, and >= 1.0 x at batch 1 "
          f"for ~200 tokens: {'met' if met else 'NOT met'}")
    for (name, batch), floor in targets:
        ratio = ratios[(name, batch)]
        print(f"summary|local-ai ÷ sentence-transformers, {name} texts, batch {batch}|{rounded_down(ratio)}|"
              f">= {floor:.2f}|{'met' if ratio >= floor else 'NOT met'}")


if __name__ == "__main__":
    main()
