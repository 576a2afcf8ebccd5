// A custom pipeline, as DESIGN.md allows: it sends embedding-job messages to embeddings-queue
// itself, without the gateway. The end-to-end suite uses it to deliver a message twice, or one
// the gateway would never send. It also answers read-only SQL on the stack's D1, so that the
// suite's checks read the store in milliseconds rather than through a `wrangler d1` process.
//
// `wrangler dev` serves only the first worker of its configs on its port, so in the suite this
// worker comes first and passes every other request to api-worker unchanged, over a service
// binding. It is a test fixture: no deploy script knows it.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/__pipeline/send" && request.method === "POST") {
      const messages = await request.json();
      await env.EMBEDDINGS_QUEUE.sendBatch(messages.map((body) => ({ body })));
      return Response.json({ sent: messages.length }, { status: 202 });
    }
    if (url.pathname === "/__d1/select" && request.method === "POST") {
      const { sql } = await request.json();
      if (!/^\s*SELECT\b/i.test(sql) || sql.includes(";")) {
        return Response.json({ error: "one SELECT only" }, { status: 400 });
      }
      const { results } = await env.DB.prepare(sql).all();
      return Response.json(results);
    }
    return env.API.fetch(request);
  },
};
