/**
 * d1-embeddings-client: a Worker's typed client of search-worker, through a service binding
 * (Workers RPC), and the embedding job custom pipelines send to the queue.
 *
 * ```ts
 * const embeddings = createEmbeddings(env, { organizationId: "org_1" });
 * const matches = await embeddings.claimSimilarity.search("Police arrested three suspects", {
 *   storyId: "story_123",
 *   limit: 5,
 *   threshold: 0.7,
 * });
 * const vector = await embeddings.$.embed("any text", { model: "@cf/baai/bge-small-en-v1.5" });
 * ```
 *
 * - `createEmbeddings` ({@link createEmbeddings}): one property per search service of
 *   embeddings.toml (`search`, `findWithGrayZone`, `embed`), and `$` for the calls that name
 *   no service (`embed` by model, `query` by vector, `enqueue`).
 * - {@link EmbeddingsError}: what every call throws, with its `code` and `status`.
 * - {@link embeddingJob} and {@link sendJob}: a queue message checked as consumer-worker checks it.
 * - {@link allowed}: whether a member's role may do an action, by the gateway's rule (search-worker
 *   and the queue check no role: an app that calls them for its users checks first).
 * - `embeddings.generated.ts`: the services, tables, fields, models and access rules,
 *   generated from embeddings.toml by `cargo run -p client-types`.
 *
 * @module
 */

export { allowed, allowedIn, memberRoles } from "./access.ts";
export type { AccessRule, AccessTable } from "./access.ts";
export { createEmbeddings } from "./client.ts";
export type {
  Calls,
  DimensionsOfModel,
  Embeddings,
  EmbeddingsOptions,
  Enqueued,
  EnqueueOptions,
  GrayZoneMatches,
  Match,
  QueryMatch,
  QueryOptions,
  ServiceClient,
  Vector,
} from "./client.ts";
export { EmbeddingsError, errorStatuses, isBadInput, isNotFound, isUnavailable } from "./errors.ts";
export type { ErrorCode } from "./errors.ts";
export type { Condition, FieldFilter, Ordered, Range, Scalar } from "./filter.ts";
export { checkJob, contentHash, embeddingJob, sendJob, truncate } from "./job.ts";
export type { EmbeddingJob, EmbeddingJobInput } from "./job.ts";
export type { DimensionsOf, FieldOf, GrayZoneOptions, SearchOptions, Shorthands, TableOf } from "./options.ts";
export type { Classification, Outcome, SearchMode, SearchRpc } from "./rpc.ts";
// The config's services, tables, models, access table, `Filter_{table}` types and job constants.
export * from "./embeddings.generated.ts";
