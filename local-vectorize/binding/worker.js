// The Vectorize binding for local runs. Wrangler has no local Vectorize, so locally each
// `[[vectorize]]` binding becomes a service binding to this Worker, whose props name the index:
//
//   [[services]]
//   binding = "EVIDENCE_INDEX"
//   service = "local-vectorize"
//   props = { index = "evidence" }
//
// Its default entrypoint has exactly the methods of the real binding, with the same results,
// and answers them through the Vectorize REST API of the local-vectorize server at
// `env.LOCAL_VECTORIZE_URL`. It follows the Workers runtime's own binding (workerd,
// src/cloudflare/internal/vectorize-api.ts) step by step, so that code which works here works
// there: the same option handling (`returnMetadata: true` becomes "all"; `false` is sent as it
// is, and refused by the server as Vectorize refuses it), NDJSON writes, and errors such as
// `VECTOR_QUERY_ERROR (code = 40006): invalid query vector, expected 768 dimensions, and got
// 384 dimensions`. Writes carry `x-local-vectorize-caller: worker`, so that the server applies
// the Workers limit of 1000 vectors a call rather than the HTTP API's 5000.

import { WorkerEntrypoint } from "cloudflare:workers";

const CALLER = { "x-local-vectorize-caller": "worker" };
const METADATA_LEVELS = ["none", "indexed", "all"];

export default class LocalVectorize extends WorkerEntrypoint {
  /** `{vectorCount, dimensions, processedUpToDatetime, processedUpToMutation}`. */
  async describe() {
    return send(this, "INDEX_GET", "info", { method: "GET", headers: CALLER });
  }

  /** `{count, matches: [{id, score, values?, metadata?, namespace?}]}`. */
  async query(vector, options) {
    return query(this, { vector: toArray(vector) }, options);
  }

  /** As `query`, near the stored vector of this id. */
  async queryById(vectorId, options) {
    return query(this, { vectorId }, options);
  }

  /** `{mutationId}`; a vector whose id the index holds is left as it is. */
  async insert(vectors) {
    return write(this, "VECTOR_INSERT", "insert", vectors);
  }

  /** `{mutationId}`; a vector whose id the index holds is replaced in full. */
  async upsert(vectors) {
    return write(this, "VECTOR_UPSERT", "upsert", vectors);
  }

  /** The vectors found, `[{id, values, metadata?, namespace?}]`. */
  async getByIds(ids) {
    return send(this, "VECTOR_GET", "get_by_ids", json({ ids }));
  }

  /** `{mutationId}`. */
  async deleteByIds(ids) {
    return send(this, "VECTOR_DELETE", "delete_by_ids", json({ ids }));
  }
}

function toArray(values) {
  return Array.isArray(values) ? values : Array.from(values);
}

function json(body) {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...CALLER },
    body: JSON.stringify(body),
  };
}

async function query(entrypoint, target, options) {
  // As the runtime's binding: a truthy returnMetadata must be a boolean or a level, and a
  // boolean `true` is sent as "all". `false` is falsy, so it is sent as it is.
  if (options?.returnMetadata) {
    const level = options.returnMetadata;
    if (typeof level !== "boolean" && !METADATA_LEVELS.includes(level)) {
      throw new Error(
        `Invalid returnMetadata option. Expected: true, false, "none", "indexed" or "all"; got: ${level}`,
      );
    }
    if (typeof level === "boolean") {
      options = { ...options, returnMetadata: "all" };
    }
  }
  return send(entrypoint, "VECTOR_QUERY", "query", json({ ...options, ...target }));
}

async function write(entrypoint, operation, endpoint, vectors) {
  const body = vectors
    .map((vector) => JSON.stringify({ ...vector, values: toArray(vector.values) }))
    .join("\n");
  return send(entrypoint, operation, endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-ndjson", ...CALLER },
    body,
  });
}

/** Calls the server for the bound index; answers the envelope's result, or throws as the
 * runtime's binding throws: `${OPERATION}_ERROR (code = N): message`. */
async function send(entrypoint, operation, endpoint, init) {
  const index = entrypoint.ctx.props?.index;
  if (!index) {
    throw new Error("local-vectorize: this service binding has no `props.index` naming its index");
  }
  const base = entrypoint.env.LOCAL_VECTORIZE_URL;
  if (!base) {
    throw new Error("local-vectorize: LOCAL_VECTORIZE_URL (the local-vectorize server) is not set");
  }
  const url = `${base.replace(/\/+$/, "")}/client/v4/accounts/local/vectorize/v2/indexes/${encodeURIComponent(index)}/${endpoint}`;
  const response = await fetch(url, init);
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    // Not JSON: reported by its status below, as the runtime's binding does.
  }
  if (response.status === 200 && envelope?.success === true) {
    return envelope.result;
  }
  const error = envelope?.errors?.[0];
  if (error) {
    const code = typeof error.code === "number" ? ` (code = ${error.code})` : "";
    throw new Error(`${operation}_ERROR${code}: ${error.message}`, {
      cause: new Error(error.message),
    });
  }
  throw new Error(`${operation}_ERROR: Status + ${response.status}`, {
    cause: new Error(`Status ${response.status}`),
  });
}
