// A custom pipeline, as DESIGN.md allows: it sends embedding-job messages to embeddings-queue
// itself, without the gateway. The end-to-end suite uses it to deliver a message twice, or one
// the gateway would never send.
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
    return env.API.fetch(request);
  },
};
