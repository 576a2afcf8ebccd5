/**
 * Readers of each method's value: the value in the client's shape, or `undefined` when it is
 * not what search-worker promises (the caller then throws an `internal` error).
 *
 * @module
 */

import { isObject } from "./rpc.ts";
import type { Classification, WireMatch, WireQueryMatch } from "./rpc.ts";

const classifications: readonly unknown[] = ["DUPLICATE", "CONFIRMS", "RELATED", "NEW"] satisfies Classification[];

function isMatch(value: unknown): value is WireMatch {
  return (
    isObject(value) &&
    typeof value["id"] === "string" &&
    typeof value["score"] === "number" &&
    classifications.includes(value["classification"]) &&
    isObject(value["metadata"])
  );
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
export function readMatches(value: unknown): WireMatch[] | undefined {
  return Array.isArray(value) && value.every(isMatch) ? value : undefined;
}

/** `grayZone`'s two lists, renamed as the client names them. */
export function readGrayZone(value: unknown): { highConfidence: WireMatch[]; grayZone: WireMatch[] } | undefined {
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
