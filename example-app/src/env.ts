// The bindings and secrets of wrangler/example-app.toml, in one place.
import type { EmbeddingJob } from "d1-embeddings-client";

export interface Env {
  /** The D1 database `embeddings`: better-auth's tables and the gateway's, one database. */
  DB: D1Database;
  /** search-worker, over Workers RPC: what d1-embeddings-client calls for searches. */
  SEARCH: Fetcher;
  /** Producer of `embeddings-queue`, for the custom pipeline's jobs. */
  EMBEDDINGS_QUEUE: Queue<EmbeddingJob>;
  /** The secret better-auth signs session cookies with; the gateway holds the same one. */
  BETTER_AUTH_SECRET: string;
}
