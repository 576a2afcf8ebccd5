#!/usr/bin/env python3
"""Scores retrieval runs on the collections of make_collections.py, beside reference runs.

    evaluate.py [--model DIR] COLLECTIONS_DIR RUNS_DIR

For each COLLECTIONS_DIR/<name>/ with docs.jsonl, queries.jsonl and qrels.jsonl, the reference
runs are made (cached as RUNS_DIR/<name>/ref-*.run.json, and remade only when missing or when
what they were made from changed, as RUNS_DIR/<name>/ref-keys.json records):

  ref-semantic            all-MiniLM-L6-v2 (sentence-transformers, max_seq_length 512,
                          normalized), exact cosine; each document embedded from the text the
                          product embeds: its first 2,048 characters, cut as
                          shared::models::truncate cuts them
  ref-semantic-passages   the same model, each document scored by its best passage, the
                          passages read from COLLECTIONS_DIR/<name>/passages.jsonl
                          ({"id": docid, "passages": [[start, end], ...]}, code points, end
                          exclusive); skipped when that file is missing
  ref-keyword             BM25 (bm25s: Lucene variant, k1 1.5, b 0.75, English stopwords, its
                          default tokenizer, no stemming)
  ref-hybrid(-passages)   ranx reciprocal rank fusion (k 60) of the semantic run and ref-keyword

Every other RUNS_DIR/<name>/*.run.json is one of ours. Each run, {qid: {docid: score}} with up to
100 documents a query, is scored with ranx (nDCG@10, recall@100, MRR@10) over the queries that
have a judged document, and printed as a Markdown table per collection, then the differences
that matter. The model comes from --model or the MODEL_DIR environment variable. Document
embeddings are cached in RUNS_DIR/cache/ as .npy, keyed by a hash of the model and the texts.
"""

import argparse
import json
import os
import sys
import time

from references import (BM25, FAQ_TARGET, HEADERS, MAX_SEQ_LENGTH, METRICS, RRF_K, TOP_K,
                        Collection, Embedder, by_rank, reference_runs)


def score(coll, run):
    from ranx import Qrels, Run, evaluate
    run = by_rank({q: docs for q, docs in run.items() if q in coll.qrels})
    answered = len(run)
    if not run:
        return {m: 0.0 for m in METRICS}, 0
    result = evaluate(Qrels.from_dict(coll.qrels), Run.from_dict(run), METRICS,
                      make_comparable=True)
    return {m: float(result[m]) for m in METRICS}, answered


def fmt_delta(x):
    return f"{x:+.4f}"


def comparisons(coll, scores):
    lines = []
    if "ours-semantic" in scores and "ref-semantic" in scores:
        deltas = {m: scores["ours-semantic"][m] - scores["ref-semantic"][m] for m in METRICS}
        text = ", ".join(f"{h} {fmt_delta(deltas[m])}" for m, h in zip(METRICS, HEADERS))
        verdict = ""
        if coll.name == "faq":
            ok = all(abs(d) <= FAQ_TARGET for d in deltas.values())
            verdict = f" (target |Δ| ≤ {FAQ_TARGET}: {'met' if ok else 'MISSED'})"
        lines.append(f"- {coll.name}: ours-semantic − ref-semantic: {text}{verdict}")
    for side in ("ref", "ours"):
        for suffix in ("", "-passages"):
            hybrid, sem, kw = (f"{side}-hybrid{suffix}", f"{side}-semantic{suffix}",
                               f"{side}-keyword")
            if hybrid in scores and sem in scores and kw in scores:
                parts = []
                for m, h in zip(METRICS, HEADERS):
                    better = max((sem, kw), key=lambda r: scores[r][m])
                    parts.append(f"{h} {fmt_delta(scores[hybrid][m] - scores[better][m])} "
                                 f"(vs {better})")
                lines.append(f"- {coll.name}: {hybrid} − the better of {sem} and {kw}: "
                             + ", ".join(parts))
            if suffix:
                for base in (f"{side}-semantic", f"{side}-hybrid"):
                    long_ = base + suffix
                    if long_ in scores and base in scores:
                        text = ", ".join(f"{h} {fmt_delta(scores[long_][m] - scores[base][m])}"
                                         for m, h in zip(METRICS, HEADERS))
                        lines.append(f"- {coll.name}: {long_} − {base} (passages against the "
                                     f"2,048-character cut): {text}")
    return lines


def summaries(coll, scores):
    """`summary|figure|value|target|met` lines for the table `scripts/bench` gathers."""
    lines = []
    for run in sorted(r for r in scores if not r.startswith("ref-")):
        ref = "ref-" + run.split("-", 1)[-1]
        beside = f", the reference {scores[ref]['ndcg@10']:.4f}" if ref in scores else ""
        lines.append(f"summary|quality, {coll.name}: {run} nDCG@10{beside}"
                     f"|{scores[run]['ndcg@10']:.4f}|(no target)|-")
    if coll.name == "faq" and "ours-semantic" in scores and "ref-semantic" in scores:
        worst = max(abs(scores["ours-semantic"][m] - scores["ref-semantic"][m]) for m in METRICS)
        lines.append(f"summary|quality, faq: ours-semantic against sentence-transformers, the "
                     f"largest difference of nDCG@10, recall@100, MRR@10|{worst:.4f}"
                     f"|<= {FAQ_TARGET}|{'met' if worst <= FAQ_TARGET else 'NOT met'}")
    return lines


REF_ORDER = ["ref-semantic", "ref-semantic-passages", "ref-keyword", "ref-hybrid",
             "ref-hybrid-passages"]


def run_order(name):
    """The reference runs in a fixed order, then ours by name."""
    return (0, REF_ORDER.index(name), "") if name in REF_ORDER else (1, 0, name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.environ.get("MODEL_DIR"),
                        help="the all-MiniLM-L6-v2 directory (default: $MODEL_DIR)")
    parser.add_argument("collections_dir")
    parser.add_argument("runs_dir")
    args = parser.parse_args()
    if not args.model or not os.path.isdir(args.model):
        sys.exit("no model: give --model DIR or set MODEL_DIR")
    names = sorted(n for n in os.listdir(args.collections_dir)
                   if all(os.path.exists(os.path.join(args.collections_dir, n, f))
                          for f in ("docs.jsonl", "queries.jsonl", "qrels.jsonl")))
    if not names:
        sys.exit(f"no collection in {args.collections_dir}")
    embedder = Embedder(args.model, os.path.join(args.runs_dir, "cache"))
    print(f"Reference: all-MiniLM-L6-v2 (sentence-transformers, max_seq_length "
          f"{MAX_SEQ_LENGTH}, exact cosine); BM25 by bm25s ({BM25['method']}, k1 {BM25['k1']}, "
          f"b {BM25['b']}, English stopwords, default tokenizer, no stemming); hybrid: ranx RRF, "
          f"k {RRF_K}; top {TOP_K} a query.\n")
    for name in names:
        started = time.time()
        coll = Collection(os.path.join(args.collections_dir, name))
        run_dir = os.path.join(args.runs_dir, name)
        notes = []
        runs = reference_runs(coll, run_dir, embedder, notes)
        ours = sorted(f for f in os.listdir(run_dir)
                      if f.endswith(".run.json") and not f.startswith("ref-"))
        for f in ours:
            runs[f[:-len(".run.json")]] = json.load(open(os.path.join(run_dir, f)))
        scores, rows = {}, []
        for run_name in sorted(runs, key=run_order):
            scores[run_name], answered = score(coll, runs[run_name])
            if answered < len(coll.qids):
                notes.append(f"{run_name} answered {answered} of {len(coll.qids)} queries "
                             "(the others count as misses)")
            rows.append([name, run_name, str(len(coll.qids))]
                        + [f"{scores[run_name][m]:.4f}" for m in METRICS])
        print(f"### {name}\n")
        print("| collection | run | queries | " + " | ".join(HEADERS) + " |")
        print("| --- | --- | ---: | " + " | ".join("---:" for _ in HEADERS) + " |")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print()
        for line in comparisons(coll, scores):
            print(line)
        for note in notes:
            print(f"- {name}: {note}")
        for line in summaries(coll, scores):
            print(line)
        print(f"- {name}: {len(coll.texts)} documents, {len(coll.qids)} queries "
              f"({coll.skipped} without a judged document skipped); "
              f"{time.time() - started:.0f} s\n", flush=True)


if __name__ == "__main__":
    main()
