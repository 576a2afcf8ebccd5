var __defProp = Object.defineProperty;
var __name = (target, value) => __defProp(target, "name", { value, configurable: true });

// pipeline.js
var PAGE = 500;
var SEND = 100;
var pipeline_default = {
  async fetch(request, env) {
    if (request.method !== "POST") return Response.json({ worker: "floor-pipeline" });
    const body = await request.json();
    const path = new URL(request.url).pathname;
    if (path === "/backfill") return Response.json(await backfill(env, body));
    if (path === "/job") return Response.json(await enqueue(env, body), { status: 202 });
    return Response.json({ error: `no route ${path}` }, { status: 404 });
  },
  async queue(batch, env) {
    const db = env.DB;
    const messages = batch.messages.map((message) => message.body);
    const { org, model, aiUrl } = messages[0];
    const now = Date.now();
    const ofRecords = messages.filter((m) => m.record !== void 0);
    const [delivered, read] = await db.batch([
      db.prepare(
        `UPDATE embedding_jobs SET status = 'processing', attempts = attempts + 1,
               updated_at = ?2
           WHERE id IN (SELECT value FROM json_each(?1)) AND status IN ('queued', 'processing')
           RETURNING id`
      ).bind(JSON.stringify(messages.map((m) => m.job)), now),
      db.prepare(
        `SELECT n.id, n.title, n.body FROM json_each(?2) j
           CROSS JOIN notes n ON n.organization_id = ?1 AND n.id = j.value`
      ).bind(org, JSON.stringify(ofRecords.map((m) => m.record)))
    ]);
    const readAt = Date.now();
    const notes = read.results;
    const ofContent = messages.filter((m) => m.content !== void 0);
    const reply = await fetch(`${aiUrl}/client/v4/accounts/local/ai/run/${model}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: [...notes.map(noteText), ...ofContent.map((m) => m.content)] })
    });
    if (!reply.ok) throw new Error(`local-ai answered ${reply.status}`);
    const vectors = (await reply.json()).result.data;
    const embeddedAt = Date.now();
    const jobOf = new Map(ofRecords.map((m) => [m.record, m]));
    const records = notes.map((note, n) => {
      const job = jobOf.get(note.id);
      const vector = vectors[n];
      return {
        n: n + 1,
        org,
        record: note.id,
        job: job.job,
        created: job.created,
        hash: job.hash,
        vector: JSON.stringify(vector),
        hex: hex(vector),
        codes: codes(vector)
      };
    });
    const contents = ofContent.map((m, i) => ({ job: m.job, hex: hex(vectors[notes.length + i]) }));
    const writes = [];
    if (records.length > 0) writes.push(...recordWrites(db, JSON.stringify(records), org, model));
    if (contents.length > 0) {
      writes.push(
        db.prepare(
          `UPDATE embedding_jobs SET status = 'done', vector = unhex(w.hex), updated_at = ?2,
                 completed_at = ?2
             FROM (SELECT value ->> 'job' AS job, value ->> 'hex' AS hex FROM json_each(?1)) AS w
             WHERE embedding_jobs.id = w.job`
        ).bind(JSON.stringify(contents), embeddedAt)
      );
    }
    await db.batch(writes);
    batch.ackAll();
    console.log(
      JSON.stringify({
        fields: {
          message: "batch processed",
          queue: "floor-queue",
          jobs: messages.length,
          delivered: delivered.results.length,
          outcomes: JSON.stringify({ acked: records.length + contents.length }),
          read_ms: readAt - now,
          embed_ms: embeddedAt - readAt,
          write_ms: Date.now() - embeddedAt
        }
      })
    );
  }
};
async function backfill(env, { organizationId, model, aiUrl, cursor }) {
  const { results: notes } = await env.DB.prepare(
    `SELECT id, title, body FROM notes WHERE organization_id = ?1 AND (?2 IS NULL OR id > ?2)
     ORDER BY id LIMIT ?3`
  ).bind(organizationId, cursor ?? null, PAGE).all();
  const created = Date.now();
  const jobs = await Promise.all(
    notes.map(async (note) => {
      const content = noteText(note);
      return { id: crypto.randomUUID(), record: note.id, content, hash: await sha256(content) };
    })
  );
  await insertJobs(env.DB, jobs, organizationId, model, created);
  for (let i = 0; i < jobs.length; i += SEND) {
    await env.QUEUE.sendBatch(
      jobs.slice(i, i + SEND).map((job) => ({
        body: {
          job: job.id,
          org: organizationId,
          record: job.record,
          hash: job.hash,
          model,
          aiUrl,
          created
        }
      }))
    );
  }
  return { count: jobs.length, nextCursor: notes.length === PAGE ? notes.at(-1).id : null };
}
__name(backfill, "backfill");
async function enqueue(env, { organizationId, model, aiUrl, content }) {
  const created = Date.now();
  const job = { id: crypto.randomUUID(), content, hash: await sha256(content) };
  await insertJobs(env.DB, [job], organizationId, model, created);
  await env.QUEUE.send({ job: job.id, org: organizationId, content, model, aiUrl, created });
  return { jobId: job.id };
}
__name(enqueue, "enqueue");
function insertJobs(db, jobs, organizationId, model, created) {
  return db.prepare(
    `INSERT INTO embedding_jobs (id, organization_id, table_name, record_id, model, content,
           content_hash, status, attempts, created_at, updated_at)
       SELECT value ->> 'id', ?2, CASE WHEN value ->> 'record' IS NOT NULL THEN 'notes' END,
           value ->> 'record', ?3, value ->> 'content', value ->> 'hash', 'queued', 0, ?4, ?4
       FROM json_each(?1)`
  ).bind(JSON.stringify(jobs), organizationId, model, created).run();
}
__name(insertJobs, "insertJobs");
function recordWrites(db, records, org, model) {
  const now = Date.now();
  return [
    db.prepare(
      `UPDATE notes SET embedding = w.vector
         FROM (SELECT value ->> 'org' AS org, value ->> 'record' AS record,
                   value ->> 'vector' AS vector
               FROM json_each(?1)) AS w
         WHERE notes.organization_id = w.org AND notes.id = w.record`
    ).bind(records),
    db.prepare(
      `INSERT INTO embedding_vectors (organization_id, table_name, record_id, vector_id,
             model, content_hash, vector, codes, metadata, job_id, job_created_at, seq,
             updated_at, location)
         SELECT ?2, 'notes', w.record, w.record, ?3, w.hash, unhex(w.hex), w.codes,
             json_object('topic', r.topic), w.job, w.created,
             (SELECT COALESCE(MAX(seq), 0) FROM embedding_vectors
              WHERE organization_id = ?2 AND table_name = 'notes') + w.n, ?4, 'd1'
         FROM (SELECT value ->> 'n' AS n, value ->> 'record' AS record, value ->> 'job' AS job,
                   value ->> 'created' AS created, value ->> 'hash' AS hash,
                   value ->> 'hex' AS hex, value ->> 'codes' AS codes
               FROM json_each(?1)) AS w
         CROSS JOIN notes r ON r.organization_id = ?2 AND r.id = w.record
         WHERE true
         ON CONFLICT (organization_id, table_name, model, location, record_id)
         DO UPDATE SET vector = excluded.vector, codes = excluded.codes,
             metadata = excluded.metadata, job_id = excluded.job_id,
             job_created_at = excluded.job_created_at, seq = excluded.seq,
             updated_at = excluded.updated_at`
    ).bind(records, org, model, now),
    db.prepare(
      `UPDATE embedding_jobs SET status = 'done', updated_at = ?2, completed_at = ?2
         WHERE id IN (SELECT value ->> 'job' FROM json_each(?1))`
    ).bind(records, now)
  ];
}
__name(recordWrites, "recordWrites");
function noteText(note) {
  return [note.title, note.body].filter((part) => part).join("\n");
}
__name(noteText, "noteText");
async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return bytesHex(new Uint8Array(digest));
}
__name(sha256, "sha256");
function hex(vector) {
  return bytesHex(new Uint8Array(Float32Array.from(vector).buffer));
}
__name(hex, "hex");
function bytesHex(bytes) {
  let text = "";
  for (const byte of bytes) text += byte.toString(16).padStart(2, "0");
  return text;
}
__name(bytesHex, "bytesHex");
function codes(vector) {
  let norm = 0;
  let largest = 0;
  for (const x of vector) {
    norm += x * x;
    largest = Math.max(largest, Math.abs(x));
  }
  const unit = 1 / Math.sqrt(norm || 1);
  const scale = largest * unit / 127 || 1;
  const bytes = new Uint8Array(9 + vector.length);
  const view = new DataView(bytes.buffer);
  bytes[0] = 1;
  view.setFloat32(1, scale, true);
  let residual = 0;
  vector.forEach((x, i) => {
    const code = Math.round(x * unit / scale);
    residual += (x * unit - code * scale) ** 2;
    view.setInt8(9 + i, code);
  });
  view.setFloat32(5, Math.sqrt(residual), true);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/=+$/, "");
}
__name(codes, "codes");

// ../../wrangler/node_modules/wrangler/templates/middleware/middleware-ensure-req-body-drained.ts
var drainBody = /* @__PURE__ */ __name(async (request, env, _ctx, middlewareCtx) => {
  try {
    return await middlewareCtx.next(request, env);
  } finally {
    try {
      if (request.body !== null && !request.bodyUsed) {
        const reader = request.body.getReader();
        while (!(await reader.read()).done) {
        }
      }
    } catch (e) {
      console.error("Failed to drain the unused request body.", e);
    }
  }
}, "drainBody");
var middleware_ensure_req_body_drained_default = drainBody;

// ../../wrangler/node_modules/wrangler/templates/middleware/middleware-miniflare3-json-error.ts
function reduceError(e) {
  return {
    name: e?.name,
    message: e?.message ?? String(e),
    stack: e?.stack,
    cause: e?.cause === void 0 ? void 0 : reduceError(e.cause)
  };
}
__name(reduceError, "reduceError");
var jsonError = /* @__PURE__ */ __name(async (request, env, _ctx, middlewareCtx) => {
  try {
    return await middlewareCtx.next(request, env);
  } catch (e) {
    const error = reduceError(e);
    const body = JSON.stringify(error);
    const headers = {
      "Content-Type": "application/json",
      "MF-Experimental-Error-Stack": "true"
    };
    const encoded = encodeURIComponent(body);
    if (encoded.length <= 8192) {
      headers["MF-Experimental-Error-Stack-Payload"] = encoded;
    }
    return new Response(body, { status: 500, headers });
  }
}, "jsonError");
var middleware_miniflare3_json_error_default = jsonError;

// .wrangler/tmp/bundle-YOMbGL/middleware-insertion-facade.js
var __INTERNAL_WRANGLER_MIDDLEWARE__ = [
  middleware_ensure_req_body_drained_default,
  middleware_miniflare3_json_error_default
];
var middleware_insertion_facade_default = pipeline_default;

// ../../wrangler/node_modules/wrangler/templates/middleware/common.ts
var __facade_middleware__ = [];
function __facade_register__(...args) {
  __facade_middleware__.push(...args.flat());
}
__name(__facade_register__, "__facade_register__");
function __facade_invokeChain__(request, env, ctx, dispatch, middlewareChain) {
  const [head, ...tail] = middlewareChain;
  const middlewareCtx = {
    dispatch,
    next(newRequest, newEnv) {
      return __facade_invokeChain__(newRequest, newEnv, ctx, dispatch, tail);
    }
  };
  return head(request, env, ctx, middlewareCtx);
}
__name(__facade_invokeChain__, "__facade_invokeChain__");
function __facade_invoke__(request, env, ctx, dispatch, finalMiddleware) {
  return __facade_invokeChain__(request, env, ctx, dispatch, [
    ...__facade_middleware__,
    finalMiddleware
  ]);
}
__name(__facade_invoke__, "__facade_invoke__");

// .wrangler/tmp/bundle-YOMbGL/middleware-loader.entry.ts
var __Facade_ScheduledController__ = class ___Facade_ScheduledController__ {
  constructor(scheduledTime, cron, noRetry) {
    this.scheduledTime = scheduledTime;
    this.cron = cron;
    this.#noRetry = noRetry;
  }
  scheduledTime;
  cron;
  static {
    __name(this, "__Facade_ScheduledController__");
  }
  #noRetry;
  noRetry() {
    if (!(this instanceof ___Facade_ScheduledController__)) {
      throw new TypeError("Illegal invocation");
    }
    this.#noRetry();
  }
};
function wrapExportedHandler(worker) {
  if (__INTERNAL_WRANGLER_MIDDLEWARE__ === void 0 || __INTERNAL_WRANGLER_MIDDLEWARE__.length === 0) {
    return worker;
  }
  for (const middleware of __INTERNAL_WRANGLER_MIDDLEWARE__) {
    __facade_register__(middleware);
  }
  const fetchDispatcher = /* @__PURE__ */ __name(function(request, env, ctx) {
    if (worker.fetch === void 0) {
      throw new Error("Handler does not export a fetch() function.");
    }
    return worker.fetch(request, env, ctx);
  }, "fetchDispatcher");
  return {
    ...worker,
    fetch(request, env, ctx) {
      const dispatcher = /* @__PURE__ */ __name(function(type, init) {
        if (type === "scheduled" && worker.scheduled !== void 0) {
          const controller = new __Facade_ScheduledController__(
            Date.now(),
            init.cron ?? "",
            () => {
            }
          );
          return worker.scheduled(controller, env, ctx);
        }
      }, "dispatcher");
      return __facade_invoke__(request, env, ctx, dispatcher, fetchDispatcher);
    }
  };
}
__name(wrapExportedHandler, "wrapExportedHandler");
function wrapWorkerEntrypoint(klass) {
  if (__INTERNAL_WRANGLER_MIDDLEWARE__ === void 0 || __INTERNAL_WRANGLER_MIDDLEWARE__.length === 0) {
    return klass;
  }
  for (const middleware of __INTERNAL_WRANGLER_MIDDLEWARE__) {
    __facade_register__(middleware);
  }
  return class extends klass {
    #fetchDispatcher = /* @__PURE__ */ __name((request, env, ctx) => {
      this.env = env;
      this.ctx = ctx;
      if (super.fetch === void 0) {
        throw new Error("Entrypoint class does not define a fetch() function.");
      }
      return super.fetch(request);
    }, "#fetchDispatcher");
    #dispatcher = /* @__PURE__ */ __name((type, init) => {
      if (type === "scheduled" && super.scheduled !== void 0) {
        const controller = new __Facade_ScheduledController__(
          Date.now(),
          init.cron ?? "",
          () => {
          }
        );
        return super.scheduled(controller);
      }
    }, "#dispatcher");
    fetch(request) {
      return __facade_invoke__(
        request,
        this.env,
        this.ctx,
        this.#dispatcher,
        this.#fetchDispatcher
      );
    }
  };
}
__name(wrapWorkerEntrypoint, "wrapWorkerEntrypoint");
var WRAPPED_ENTRY;
if (typeof middleware_insertion_facade_default === "object") {
  WRAPPED_ENTRY = wrapExportedHandler(middleware_insertion_facade_default);
} else if (typeof middleware_insertion_facade_default === "function") {
  WRAPPED_ENTRY = wrapWorkerEntrypoint(middleware_insertion_facade_default);
}
var middleware_loader_entry_default = WRAPPED_ENTRY;
export {
  __INTERNAL_WRANGLER_MIDDLEWARE__,
  middleware_loader_entry_default as default
};
//# sourceMappingURL=pipeline.js.map
