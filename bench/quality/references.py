"""The reference runs of `evaluate.py`: sentence-transformers with exact cosine, bm25s, and ranx's
reciprocal rank fusion, each cached beside the runs; and the collections they are made on."""

import os
import sys
import hashlib
import json
import time
import warnings

import numpy as np

TOP_K = 100
MAX_INPUT_CHARS = 2048  # shared::models::MAX_INPUT_CHARS
MAX_SEQ_LENGTH = 512  # what local-ai, our stand-in for Workers AI, reads of a text
BATCH = 32
METRICS = ["ndcg@10", "recall@100", "mrr@10"]
HEADERS = ["nDCG@10", "recall@100", "MRR@10"]
BM25 = {"method": "lucene", "k1": 1.5, "b": 0.75, "stopwords": "english"}
RRF_K = 60
FAQ_TARGET = 0.005

# Rust's char::is_whitespace (the Unicode White_Space property), which trim_end uses too.
# Python's str.isspace differs: it also takes U+001C..U+001F.
RUST_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def truncate(text):
    """shared::models::truncate: at most 2,048 characters, ending at the last whitespace among
    the final 64 if there is one, then trim_end; a text that fits is kept whole."""
    if len(text) <= MAX_INPUT_CHARS:
        return text
    head = text[:MAX_INPUT_CHARS]
    end = MAX_INPUT_CHARS
    for i in range(MAX_INPUT_CHARS - 1, MAX_INPUT_CHARS - 65, -1):
        if head[i] in RUST_WHITESPACE:
            end = i
            break
    head = head[:end]
    while head and head[-1] in RUST_WHITESPACE:
        head = head[:-1]
    return head


def sha(*parts):
    h = hashlib.sha256()
    for p in parts:
        b = p if isinstance(p, bytes) else str(p).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_json(path, value, sort_keys=True):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, sort_keys=sort_keys)
    os.replace(tmp, path)


def ranked(docs):
    """A query's documents best first, equal scores in the order of their ids."""
    return sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))


def by_rank(run):
    """The run with each score replaced by a strictly decreasing one in the order of `ranked`:
    ranx breaks ties by insertion order, which would make the figures depend on how a run's
    file happens to be ordered."""
    return {q: {d: float(len(docs) - i) for i, (d, _) in enumerate(ranked(docs))}
            for q, docs in run.items() if docs}


def write_run(path, run):
    """Queries in order, each query's documents best first."""
    write_json(path, {q: dict(ranked(run[q])) for q in sorted(run)}, sort_keys=False)


def top_k(scores, doc_ids, qids):
    """A run from a (queries x documents) score matrix: the best TOP_K documents a query
    (equal scores in document order, which is the order of ids)."""
    k = min(TOP_K, len(doc_ids))
    run = {}
    for qi, qid in enumerate(qids):
        row = scores[qi]
        order = np.argsort(-row, kind="stable")[:k]
        run[qid] = {doc_ids[j]: float(row[j]) for j in order}
    return run


class Embedder:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded on first use; embeddings of a
    list of texts cached as RUNS_DIR/cache/<hash of model and texts>.npy."""

    def __init__(self, model_dir, cache_dir):
        self.model_dir = model_dir
        self.cache_dir = cache_dir
        self._model = None
        files = []
        for d, _, names in os.walk(model_dir):
            files += [os.path.join(d, n) for n in names]
        self.fingerprint = sha(MAX_SEQ_LENGTH, *[
            sha(os.path.relpath(p, model_dir), file_sha(p)) for p in sorted(files)])

    @property
    def model(self):
        if self._model is None:
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer
            transformers.logging.set_verbosity_error()  # "longer than the maximum" per passage
            torch.set_num_threads(os.cpu_count() or 1)
            self._model = SentenceTransformer(self.model_dir, device="cpu")
            self._model.max_seq_length = MAX_SEQ_LENGTH
        return self._model

    def embed(self, texts, what):
        key = sha(self.fingerprint, "normalized", *texts)[:32]
        path = os.path.join(self.cache_dir, f"{key}.npy")
        if os.path.exists(path):
            return np.load(path)
        log(f"    embedding {len(texts)} {what}")
        started = time.time()
        emb = self.model.encode(texts, batch_size=BATCH, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        emb = np.asarray(emb, dtype=np.float32)
        log(f"    {len(texts)} {what} in {time.time() - started:.0f} s")
        os.makedirs(self.cache_dir, exist_ok=True)
        np.save(path + ".tmp.npy", emb)
        os.replace(path + ".tmp.npy", path)
        return emb

    def token_counts(self, texts):
        enc = self.model.tokenizer(texts, add_special_tokens=True, truncation=False,
                                   return_attention_mask=False, return_token_type_ids=False)
        return [len(ids) for ids in enc["input_ids"]]


class Collection:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        docs = read_jsonl(os.path.join(path, "docs.jsonl"))
        self.doc_ids = [d["id"] for d in docs]
        self.texts = [d["text"] for d in docs]
        self.index = {d: i for i, d in enumerate(self.doc_ids)}
        queries = {q["id"]: q["text"] for q in read_jsonl(os.path.join(path, "queries.jsonl"))}
        qrels = {}
        for r in read_jsonl(os.path.join(path, "qrels.jsonl")):
            if r.get("relevance", 1) > 0 and r["doc"] in self.index and r["query"] in queries:
                qrels.setdefault(r["query"], {})[r["doc"]] = int(r.get("relevance", 1))
        self.qrels = qrels
        self.qids = sorted(qrels)
        self.query_texts = [queries[q] for q in self.qids]
        self.skipped = len(queries) - len(self.qids)
        self.key = sha(*(file_sha(os.path.join(path, f))
                         for f in ("docs.jsonl", "queries.jsonl", "qrels.jsonl")))
        passages = os.path.join(path, "passages.jsonl")
        self.passages_path = passages if os.path.exists(passages) else None


def passage_spans(coll):
    """[(doc index, start, end)] in document order; documents missing from the file keep their
    cut text as their only passage (counted)."""
    spans, seen, unknown = {}, set(), 0
    for row in read_jsonl(coll.passages_path):
        i = coll.index.get(row["id"])
        if i is None:
            unknown += 1
            continue
        n = len(coll.texts[i])
        for start, end in row["passages"]:
            if not (0 <= start < end <= n):
                sys.exit(f"{coll.name}: passage [{start}, {end}) of {row['id']} is outside "
                         f"its {n} characters")
        spans[i] = [(int(s), int(e)) for s, e in row["passages"]]
        seen.add(i)
    out, missing = [], 0
    for i in range(len(coll.texts)):
        if spans.get(i):
            out += [(i, s, e) for s, e in spans[i]]
        else:
            missing += 1
            out.append((i, None, None))
    return out, missing, unknown


def semantic_run(coll, embedder):
    docs = embedder.embed([truncate(t) for t in coll.texts], f"{coll.name} documents (cut)")
    queries = embedder.embed([truncate(t) for t in coll.query_texts], f"{coll.name} queries")
    return top_k(queries @ docs.T, coll.doc_ids, coll.qids)


def passage_texts(coll, embedder, notes):
    """The passages' owners and texts, and a note on their number and token counts."""
    spans, missing, unknown = passage_spans(coll)
    texts = [truncate(coll.texts[i]) if s is None else coll.texts[i][s:e] for i, s, e in spans]
    counts = embedder.token_counts(texts)
    over = sum(c > MAX_SEQ_LENGTH for c in counts)
    notes.append(f"passages: {len(texts)} for {len(coll.texts)} documents "
                 f"({missing} documents without passages embedded as their cut, "
                 f"{unknown} unknown ids ignored); tokens a passage, special tokens "
                 f"included: max {max(counts)}, {over} over {MAX_SEQ_LENGTH}")
    return np.array([i for i, _, _ in spans]), texts


def passages_run(coll, embedder, notes):
    owners, texts = passage_texts(coll, embedder, notes)
    emb = embedder.embed(texts, f"{coll.name} passages")
    queries = embedder.embed([truncate(t) for t in coll.query_texts], f"{coll.name} queries")
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    best = np.maximum.reduceat(queries @ emb.T, starts, axis=1)  # best passage per document
    return top_k(best, [coll.doc_ids[i] for i in owners[starts]], coll.qids)


def keyword_run(coll):
    import bm25s
    retriever = bm25s.BM25(method=BM25["method"], k1=BM25["k1"], b=BM25["b"])
    retriever.index(bm25s.tokenize(coll.texts, stopwords=BM25["stopwords"], show_progress=False),
                    show_progress=False)
    tokens = bm25s.tokenize(coll.query_texts, stopwords=BM25["stopwords"], show_progress=False)
    k = min(TOP_K, len(coll.texts))
    docs, scores = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=os.cpu_count() or 1)
    run = {}
    for qi, qid in enumerate(coll.qids):
        run[qid] = {coll.doc_ids[int(d)]: float(s)
                    for d, s in zip(docs[qi], scores[qi]) if s > 0}
    return run


def hybrid_run(semantic, keyword):
    from numba.core.errors import NumbaTypeSafetyWarning
    from ranx import Run, fuse
    warnings.simplefilter("ignore", NumbaTypeSafetyWarning)  # ranx's own uint64 -> int64 cast
    runs = [Run.from_dict(by_rank(r)) for r in (semantic, keyword)]
    fused = fuse(runs=runs, norm=None, method="rrf", params={"k": RRF_K}).to_dict()
    return {q: {d: float(s) for d, s in ranked(docs)[:TOP_K]} for q, docs in fused.items()}


def reference_runs(coll, run_dir, embedder, notes):
    """The reference runs, from the cache where it is still good."""
    os.makedirs(run_dir, exist_ok=True)
    keys_path = os.path.join(run_dir, "ref-keys.json")
    try:
        old_keys = json.load(open(keys_path))
    except (OSError, ValueError):
        old_keys = {}
    passages_key = file_sha(coll.passages_path) if coll.passages_path else None
    wanted = {
        "ref-semantic": sha(coll.key, embedder.fingerprint, "cut", MAX_INPUT_CHARS),
        "ref-keyword": sha(coll.key, json.dumps(BM25, sort_keys=True)),
    }
    if passages_key:
        wanted["ref-semantic-passages"] = sha(coll.key, embedder.fingerprint, passages_key)
    else:
        notes.append(f"no passages.jsonl in {coll.name}: ref-semantic-passages and "
                     "ref-hybrid-passages skipped")
    wanted["ref-hybrid"] = sha(wanted["ref-semantic"], wanted["ref-keyword"], "rrf", RRF_K, "by rank")
    if passages_key:
        wanted["ref-hybrid-passages"] = sha(wanted["ref-semantic-passages"],
                                            wanted["ref-keyword"], "rrf", RRF_K, "by rank")
    runs, keys = {}, {}
    for name, key in wanted.items():
        path = os.path.join(run_dir, f"{name}.run.json")
        if os.path.exists(path) and old_keys.get(name) == key:
            runs[name] = json.load(open(path))
            if name == "ref-semantic-passages":  # its token counts are still wanted
                passage_texts(coll, embedder, notes)
        else:
            log(f"  {coll.name}: {name}")
            started = time.time()
            if name == "ref-semantic":
                runs[name] = semantic_run(coll, embedder)
            elif name == "ref-semantic-passages":
                runs[name] = passages_run(coll, embedder, notes)
            elif name == "ref-keyword":
                runs[name] = keyword_run(coll)
            elif name == "ref-hybrid":
                runs[name] = hybrid_run(runs["ref-semantic"], runs["ref-keyword"])
            else:
                runs[name] = hybrid_run(runs["ref-semantic-passages"], runs["ref-keyword"])
            write_run(path, runs[name])
            log(f"  {coll.name}: {name} in {time.time() - started:.0f} s")
        keys[name] = key
        write_json(keys_path, {**old_keys, **keys})
    return runs
