// The platform's floor of a search: the least any gateway can do on the way to a search worker
// (no authentication, no routing, no validation), so that `scripts/bench search` can time what
// `wrangler dev`, the RPC hop, D1 and the runtime's outbound fetch cost by themselves, beside
// the real gateway. Not part of the product: a measuring instrument, in JavaScript because that
// is the cheapest a Worker gets.
//
// POST / {organizationId, table, model, location, after, aiUrl, embed}: search.js's `search`.
export default {
  async fetch(request, env) {
    if (request.method !== "POST") return Response.json({ worker: "floor-gateway" });
    const body = await request.json();
    return Response.json(await env.SEARCH.search(body));
  },
};
