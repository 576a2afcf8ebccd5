/**
 * Readers of each method's value: the value in the client's shape, or `undefined` when it is
 * not what search-worker promises (the caller then throws an `internal` error).
 *
 * @module
 */

import { isObject } from "./rpc.ts";
import type { Match } from "./client.ts";
import type { Classification, WireMatch, WireQueryMatch } from "./rpc.ts";

const classifications: readonly unknown[] = ["DUPLICATE", "CONFIRMS", "RELATED", "NEW"] satisfies Classification[];

/** Each search's place and score of a match, as search-worker names them and the client does. */
const placings = [
  ["vector_rank", "vectorRank"],
  ["keyword_score", "keywordScore"],
  ["keyword_rank", "keywordRank"],
  ["fused_score", "fusedScore"],
] as const;

function isMatch(value: unknown): value is WireMatch {
  return (
    isObject(value) &&
    typeof value["id"] === "string" &&
    typeof value["score"] === "number" &&
    classifications.includes(value["classification"]) &&
    isObject(value["metadata"]) &&
    placings.every(([wire]) => value[wire] === undefined || typeof value[wire] === "number")
  );
}

/** A match under the client's names: each placing search-worker sent, camelCased. */
function toMatch(wire: WireMatch): Match {
  const match: Record<string, unknown> = {
    id: wire.id,
    score: wire.score,
    classification: wire.classification,
    metadata: wire.metadata,
  };
  for (const [name, alias] of placings) {
    if (wire[name] !== undefined) match[alias] = wire[name];
  }
  return match as unknown as Match;
}

function isQueryMatch(value: unknown): value is WireQueryMatch {
  return (
    isObject(value) &&
    typeof value["id"] === "string" &&
    typeof value["score"] === "number" &&
    (value["metadata"] === undefined || isObject(value["metadata"]))
  );
}

/** `search`'s matches. */
export function readMatches(value: unknown): Match[] | undefined {
  return Array.isArray(value) && value.every(isMatch) ? value.map(toMatch) : undefined;
}

/** `grayZone`'s two lists, renamed as the client names them. */
export function readGrayZone(value: unknown): { highConfidence: Match[]; grayZone: Match[] } | undefined {
  if (!isObject(value)) return undefined;
  const highConfidence = readMatches(value["high_confidence"]);
  const grayZone = readMatches(value["gray_zone"]);
  return highConfidence && grayZone ? { highConfidence, grayZone } : undefined;
}

/** `embed`'s vector, which must have `dimensions` numbers. */
export function readVector(dimensions: number): (value: unknown) => number[] | undefined {
  return (value) => {
    if (!isObject(value)) return undefined;
    const vector = value["vector"];
    const fits =
      Array.isArray(vector) && vector.length === dimensions && vector.every((x) => typeof x === "number");
    return fits ? vector : undefined;
  };
}

/** `query`'s matches. */
export function readQueryMatches(value: unknown): WireQueryMatch[] | undefined {
  if (!isObject(value)) return undefined;
  const matches = value["matches"];
  return Array.isArray(matches) && matches.every(isQueryMatch) ? matches : undefined;
}

/** `enqueue`'s job id and model. */
export function readEnqueued(value: unknown): { jobId: string; model: string } | undefined {
  return isObject(value) && typeof value["jobId"] === "string" && typeof value["model"] === "string"
    ? { jobId: value["jobId"], model: value["model"] }
    : undefined;
}
