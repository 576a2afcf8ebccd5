/**
 * Type-level tests, checked by `tsc --noEmit`: every `@ts-expect-error` line must be an error,
 * and every other line must compile. Nothing here runs.
 *
 * @module
 */

import { allowed, createEmbeddings, embeddingJob, sendJob } from "./index.ts";
import type { Embeddings, EmbeddingJob, FieldFilter, Filter_claims, Filter_notes, Match, Vector } from "./index.ts";
import type { Filter_evidence } from "./embeddings.generated.ts";

declare const env: { SEARCH: Fetcher; OTHER: unknown; EMBEDDINGS_QUEUE: Queue<EmbeddingJob> };
declare const embeddings: Embeddings;

export async function validCallsCompile(): Promise<void> {
  createEmbeddings(env, { organizationId: "org_1" });
  createEmbeddings(env, { organizationId: "org_1", binding: "OTHER" });

  const matches: Match[] = await embeddings.claimSimilarity.search("text", {
    storyId: "story_123",
    limit: 5,
    threshold: 0.7,
  });
  await embeddings.claimSimilarity.search("text");
  const fused = await embeddings.evidenceSearch.search("XQ-7734", { mode: "hybrid" });
  const ranks: (number | undefined)[] = fused.map((m) => m.keywordRank ?? m.vectorRank);
  await embeddings.noteSearch.findWithGrayZone("text", { mode: "keyword" });
  await embeddings.claimSimilarity.search("text", { filters: { story_id: { $in: ["a", "b"] } } });
  await embeddings.noteSearch.search("text", { topic: "sports", filters: {} });
  await embeddings.evidenceSearch.search("text", { filters: { story_id: { $gte: 1, $lt: 9 } } });
  const zone = await embeddings.claimSimilarity.findWithGrayZone("text", { min: 0.5, max: 0.9, storyId: "s" });
  const both: Match[] = [...zone.highConfidence, ...zone.grayZone];

  const vector: Vector<768> = await embeddings.claimSimilarity.embed("text");
  const small: Vector<384> = await embeddings.noteSearch.embed("text");
  const byModel: Vector<1024> = await embeddings.$.embed("text", { model: "@cf/baai/bge-large-en-v1.5" });
  const byDefault: Vector<768> = await embeddings.$.embed("text");
  const plain: number[] = vector;
  await embeddings.$.query(small, { table: "notes", filter: { topic: { $ne: "x" } }, topK: 3 });
  await embeddings.$.query(plain, { returnMetadata: false });
  await embeddings.$.enqueue("text", { service: "claimSimilarity" });
  await embeddings.$.enqueue("text", { model: "@cf/baai/bge-small-en-v1.5", table: "notes", id: "n_1" });

  const job = await embeddingJob({ organizationId: "org_1", content: "text", table: "claims", id: "c_1" });
  await embeddingJob({ organizationId: "org_1", content: "text", model: "@cf/baai/bge-small-en-v1.5" });
  await sendJob(env.EMBEDDINGS_QUEUE, job);

  const filters: Filter_claims[] = [
    { story_id: "s" },
    { story_id: 3 },
    { story_id: true },
    { story_id: { $eq: "s" } },
    { story_id: { $nin: [1, 2] } },
    { story_id: { $gt: "a" } },
    { story_id: { $lte: 3 } },
    { story_id: { $gt: 1, $lte: 3 } },
  ];
  const evidence: Filter_evidence = { story_id: "s" };
  void [matches, both, byModel, byDefault, filters, evidence, ranks];
}

export async function invalidCallsAreErrors(): Promise<void> {
  // @ts-expect-error: no such search service
  await embeddings.claimSimilarty.search("text");
  // @ts-expect-error: no such shorthand
  await embeddings.claimSimilarity.search("text", { topic: "x" });
  // @ts-expect-error: no such filter field
  await embeddings.claimSimilarity.search("text", { filters: { topic: "x" } });
  // @ts-expect-error: no such mode
  await embeddings.claimSimilarity.search("text", { mode: "fuzzy" });
  // @ts-expect-error: `threshold` is not a gray-zone option
  await embeddings.claimSimilarity.findWithGrayZone("text", { threshold: 0.5 });
  // @ts-expect-error: the organization is never a filter
  await embeddings.claimSimilarity.search("text", { filters: { organization_id: "org_2" } });
  // @ts-expect-error: a vector of another dimension
  const wrong: Vector<384> = await embeddings.claimSimilarity.embed("text");
  // @ts-expect-error: no such model
  await embeddings.$.embed("text", { model: "@cf/baai/bge-huge" });
  // @ts-expect-error: a filter on another table's field
  await embeddings.$.query([0.1], { table: "notes", filter: { story_id: "s" } });
  // @ts-expect-error: `service` and `model` together
  await embeddings.$.enqueue("text", { service: "noteSearch", model: "@cf/baai/bge-small-en-v1.5" });
  // @ts-expect-error: `table` without `id`
  await embeddings.$.enqueue("text", { table: "notes" });
  // @ts-expect-error: `table` without `id`
  await embeddingJob({ organizationId: "org_1", content: "text", table: "claims" });
  // @ts-expect-error: no such table
  await embeddingJob({ organizationId: "org_1", content: "text", table: "stories", id: "s_1" });
  // @ts-expect-error: the binding is not in `env`
  createEmbeddings(env, { organizationId: "org_1", binding: "MISSING" });
  // @ts-expect-error: `SEARCH` is not in this `env`
  createEmbeddings({ OTHER: 1 }, { organizationId: "org_1" });
  void wrong;
}

export function invalidFiltersAreErrors(): void {
  // @ts-expect-error: `$in` takes an array
  const notArray: Filter_claims = { story_id: { $in: "a" } };
  // @ts-expect-error: two lower bounds
  const twoLower: Filter_claims = { story_id: { $gt: 1, $gte: 0 } };
  // @ts-expect-error: two upper bounds
  const twoUpper: Filter_claims = { story_id: { $lt: 1, $lte: 0 } };
  // @ts-expect-error: operators combine only as a range
  const eqAndRange: Filter_claims = { story_id: { $eq: 1, $gt: 0 } };
  // @ts-expect-error: `$in` and `$nin` do not combine
  const inAndNin: Filter_claims = { story_id: { $in: [1], $nin: [2] } };
  // @ts-expect-error: a range compares strings or numbers
  const boolRange: Filter_claims = { story_id: { $lt: true } };
  // @ts-expect-error: no such operator
  const regex: Filter_claims = { story_id: { $regex: "s" } };
  // @ts-expect-error: no operator
  const empty: Filter_claims = { story_id: {} };
  // @ts-expect-error: a list of scalars only
  const nested: Filter_claims = { story_id: { $in: [["x"]] } };
  // @ts-expect-error: not a field of `notes`
  const otherField: Filter_notes = { story_id: "s" };
  const none: FieldFilter<never> = {};
  // @ts-expect-error: a table without metadata fields filters on none
  const anyField: FieldFilter<never> = { story_id: "s" };
  void [notArray, twoLower, twoUpper, eqAndRange, inAndNin, boolRange, regex, empty, nested, otherField, none, anyField];
}

export function accessChecksAreTyped(role: string): boolean[] {
  return [
    allowed(role, "search", "claims"),
    allowed(role, "embed"),
    // @ts-expect-error: no such action
    allowed(role, "write"),
    // @ts-expect-error: no such table
    allowed(role, "read", "claim"),
  ];
}
