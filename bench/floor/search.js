// The platform's floor of a search worker (see gateway.js): the one D1 batch search-worker
// makes on every search (the table's active set and its rows after the copy's last `seq`, the
// same two statements on the same index), and, for a new text, the REST call to local-ai beside
// it, as search-worker makes them. It scores nothing, and parses nothing it reads. `after` is
// the copy's last `seq`: none for a search of a table already copied, 0 for a first search,
// which reads every row.
import { WorkerEntrypoint } from "cloudflare:workers";

export default class FloorSearch extends WorkerEntrypoint {
  async search({ organizationId, table, model, location, after, aiUrl, embed }) {
    const db = this.env.DB;
    const reads = db.batch([
      db
        .prepare(
          `SELECT json_array(model, location, created_at) AS row FROM embedding_sets
           WHERE organization_id = ?1 AND table_name = ?2 AND role = 'active'`,
        )
        .bind(organizationId, table),
      db
        .prepare(
          `SELECT json_array(seq, record_id, codes, json(metadata)) AS row FROM embedding_vectors
           WHERE organization_id = ?1 AND table_name = ?2 AND model = ?3 AND location = ?4
             AND seq > ?5 ORDER BY seq`,
        )
        .bind(organizationId, table, model, location, after ?? Number.MAX_SAFE_INTEGER),
    ]);
    const vector = embed
      ? fetch(`${aiUrl}/client/v4/accounts/local/ai/run/${model}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ text: [embed] }),
        }).then((reply) => reply.json())
      : null;
    const [results, embedded] = await Promise.all([reads, vector]);
    return {
      rows: results.reduce((n, result) => n + result.results.length, 0),
      dims: embedded ? embedded.result.data[0].length : 0,
    };
  }

  async fetch() {
    return Response.json({ error: "floor-search has no HTTP routes" }, { status: 404 });
  }
}
