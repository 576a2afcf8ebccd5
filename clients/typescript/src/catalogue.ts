/**
 * Checks of names against the generated config, for callers the type checker cannot vouch for.
 *
 * @module
 */

import { models, tables } from "./embeddings.generated.ts";
import type { ModelName, TableName } from "./embeddings.generated.ts";
import { EmbeddingsError } from "./errors.ts";

export function isModelName(name: unknown): name is ModelName {
  return typeof name === "string" && Object.hasOwn(models, name);
}

export function isTableName(name: unknown): name is TableName {
  return typeof name === "string" && Object.hasOwn(tables, name);
}

/** The model `name`, or the error search-worker would answer for it (`shared::guard::model`). */
export function knownModel(name: unknown): ModelName {
  if (isModelName(name)) return name;
  const supported = Object.keys(models).join(", ");
  throw new EmbeddingsError("unknown_model", `model \`${String(name)}\` is not supported (supported: ${supported})`);
}
