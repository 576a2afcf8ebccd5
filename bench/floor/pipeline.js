// The platform's floor of the consumer's lines: the least any pipeline of this design does to
// embed texts through a Queue, on the stack's local D1 and local-ai, so that
// `scripts/bench consumer` can set the consumer's ratio to local-ai beside what `wrangler dev`'s
// Queues, D1 and outbound fetch leave of the model's time by themselves. Not part of the
// product: a measuring instrument, in JavaScript because that is the cheapest a Worker gets.
//
// POST /backfill {organizationId, model, aiUrl, cursor}: as the gateway's backfill, 500 notes a
// call: their job rows in one statement, their messages in `sendBatch`es of 100, and the next
// cursor (null after the last page). It checks no content hash against a stored vector.
// POST /job {organizationId, model, aiUrl, content}: as the gateway's enqueue, without its
// authentication: the job row, and its message.
//
// Each batch, as consumer-worker does, in two D1 round trips and one AI call: the deliveries
// recorded and the notes read; the texts embedded; then, in one batch, the notes' embedding
// column, their vector rows (vector, codes, metadata and `seq`, on the same indexes) and their
// jobs `done`, and a content job's vector on its row. It then logs a line as the consumer's
// ("batch processed", with `acked`). It has no sets, no freshness or order guard, no retries: a
// batch that fails throws, its messages are dropped (floor-pipeline.toml: `max_retries = 0`),
// and the benchmark's round fails when it has waited two minutes for them.
const PAGE = 500;
const SEND = 100;

export default {
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
    const ofRecords = messages.filter((m) => m.record !== undefined);
    const [delivered, read] = await db.batch([
      db
        .prepare(
          `UPDATE embedding_jobs SET status = 'processing', attempts = attempts + 1,
               updated_at = ?2
           WHERE id IN (SELECT value FROM json_each(?1)) AND status IN ('queued', 'processing')
           RETURNING id`,
        )
        .bind(JSON.stringify(messages.map((m) => m.job)), now),
      db
        .prepare(
          `SELECT n.id, n.title, n.body FROM json_each(?2) j
           CROSS JOIN notes n ON n.organization_id = ?1 AND n.id = j.value`,
        )
        .bind(org, JSON.stringify(ofRecords.map((m) => m.record))),
    ]);
    const readAt = Date.now();
    const notes = read.results;
    const ofContent = messages.filter((m) => m.content !== undefined);
    const reply = await fetch(`${aiUrl}/client/v4/accounts/local/ai/run/${model}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: [...notes.map(noteText), ...ofContent.map((m) => m.content)] }),
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
        codes: codes(vector),
      };
    });
    const contents = ofContent.map((m, i) => ({ job: m.job, hex: hex(vectors[notes.length + i]) }));
    const writes = [];
    if (records.length > 0) writes.push(...recordWrites(db, JSON.stringify(records), org, model));
    if (contents.length > 0) {
      writes.push(
        db
          .prepare(
            `UPDATE embedding_jobs SET status = 'done', vector = unhex(w.hex), updated_at = ?2,
                 completed_at = ?2
             FROM (SELECT value ->> 'job' AS job, value ->> 'hex' AS hex FROM json_each(?1)) AS w
             WHERE embedding_jobs.id = w.job`,
          )
          .bind(JSON.stringify(contents), embeddedAt),
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
          write_ms: Date.now() - embeddedAt,
        },
      }),
    );
  },
};

/** One page of a backfill of `organizationId`'s notes after `cursor`. */
async function backfill(env, { organizationId, model, aiUrl, cursor }) {
  const { results: notes } = await env.DB.prepare(
    `SELECT id, title, body FROM notes WHERE organization_id = ?1 AND (?2 IS NULL OR id > ?2)
     ORDER BY id LIMIT ?3`,
  )
    .bind(organizationId, cursor ?? null, PAGE)
    .all();
  const created = Date.now();
  const jobs = await Promise.all(
    notes.map(async (note) => {
      const content = noteText(note);
      return { id: crypto.randomUUID(), record: note.id, content, hash: await sha256(content) };
    }),
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
          created,
        },
      })),
    );
  }
  return { count: jobs.length, nextCursor: notes.length === PAGE ? notes.at(-1).id : null };
}

/** One job of `content`, bound to no record. */
async function enqueue(env, { organizationId, model, aiUrl, content }) {
  const created = Date.now();
  const job = { id: crypto.randomUUID(), content, hash: await sha256(content) };
  await insertJobs(env.DB, [job], organizationId, model, created);
  await env.QUEUE.send({ job: job.id, org: organizationId, content, model, aiUrl, created });
  return { jobId: job.id };
}

function insertJobs(db, jobs, organizationId, model, created) {
  return db
    .prepare(
      `INSERT INTO embedding_jobs (id, organization_id, table_name, record_id, model, content,
           content_hash, status, attempts, created_at, updated_at)
       SELECT value ->> 'id', ?2, CASE WHEN value ->> 'record' IS NOT NULL THEN 'notes' END,
           value ->> 'record', ?3, value ->> 'content', value ->> 'hash', 'queued', 0, ?4, ?4
       FROM json_each(?1)`,
    )
    .bind(JSON.stringify(jobs), organizationId, model, created)
    .run();
}

/** The notes' embedding column, their vector rows, and their jobs `done`. */
function recordWrites(db, records, org, model) {
  const now = Date.now();
  return [
    db
      .prepare(
        `UPDATE notes SET embedding = w.vector
         FROM (SELECT value ->> 'org' AS org, value ->> 'record' AS record,
                   value ->> 'vector' AS vector
               FROM json_each(?1)) AS w
         WHERE notes.organization_id = w.org AND notes.id = w.record`,
      )
      .bind(records),
    db
      .prepare(
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
             updated_at = excluded.updated_at`,
      )
      .bind(records, org, model, now),
    db
      .prepare(
        `UPDATE embedding_jobs SET status = 'done', updated_at = ?2, completed_at = ?2
         WHERE id IN (SELECT value ->> 'job' FROM json_each(?1))`,
      )
      .bind(records, now),
  ];
}

/** A note's text as embeddings.toml embeds it: its title and body, the empty ones left out. */
function noteText(note) {
  return [note.title, note.body].filter((part) => part).join("\n");
}

async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return bytesHex(new Uint8Array(digest));
}

/** The little-endian bytes of `vector` as f32s, in hex, as SQL `unhex()` reads them. */
function hex(vector) {
  return bytesHex(new Uint8Array(Float32Array.from(vector).buffer));
}

/** Each byte's two hex digits: a vector's 1,536 bytes are one lookup each. */
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

function bytesHex(bytes) {
  let text = "";
  for (const byte of bytes) text += HEX[byte];
  return text;
}

/**
 * A vector's codes as consumer-worker writes them (`Quantized::to_text`): a format byte, the
 * scale and residual as f32s, one signed byte a dimension, in base64 without padding.
 */
function codes(vector) {
  let norm = 0;
  let largest = 0;
  for (const x of vector) {
    norm += x * x;
    largest = Math.max(largest, Math.abs(x));
  }
  const unit = 1 / Math.sqrt(norm || 1);
  const scale = (largest * unit) / 127 || 1;
  const bytes = new Uint8Array(9 + vector.length);
  const view = new DataView(bytes.buffer);
  bytes[0] = 1;
  view.setFloat32(1, scale, true);
  let residual = 0;
  vector.forEach((x, i) => {
    const code = Math.round((x * unit) / scale);
    residual += (x * unit - code * scale) ** 2;
    view.setInt8(9 + i, code);
  });
  view.setFloat32(5, Math.sqrt(residual), true);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/=+$/, "");
}
