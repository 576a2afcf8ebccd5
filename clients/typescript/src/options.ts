/**
 * A search service's options, typed by its table, and their translation into a request: each
 * shorthand (a metadata field's camelCase alias) becomes an equality filter on its field.
 *
 * @module
 */

import { services } from "./embeddings.generated.ts";
import type { ServiceName, TableFilters } from "./embeddings.generated.ts";
import { invalid } from "./errors.ts";
import type { Scalar } from "./filter.ts";
import { isObject } from "./rpc.ts";
import type { SearchMode, WireFilter } from "./rpc.ts";

type Service<S extends ServiceName> = (typeof services)[S];

/** The table a service searches. */
export type TableOf<S extends ServiceName> = Service<S>["table"];

/** The metadata fields of a service's table. */
export type FieldOf<S extends ServiceName> = Service<S>["metadata"][number];

/** The length of a service's vectors. */
export type DimensionsOf<S extends ServiceName> = Service<S>["dimensions"];

/**
 * A service's shorthands: each metadata field's camelCase alias (`storyId` for `story_id`),
 * an equality filter on the field. The same field in `filters` too is an error.
 */
export type Shorthands<S extends ServiceName> = {
  readonly [Alias in keyof Service<S>["shorthands"]]?: Scalar;
};

/** Options of `search`, for service `S`. */
export type SearchOptions<S extends ServiceName> = {
  /** Matches to return, 1 to 100; the service's default when absent. */
  readonly limit?: number;
  /** No match scores below it (-1 to 1). */
  readonly threshold?: number;
  /** On the table's metadata fields, in Vectorize's operators. */
  readonly filters?: TableFilters[TableOf<S>];
  /** By meaning (`semantic`, the default), by words (`keyword`) or both fused (`hybrid`). */
  readonly mode?: SearchMode;
} & Shorthands<S>;

/** Options of `findWithGrayZone`, for service `S`. */
export type GrayZoneOptions<S extends ServiceName> = {
  /** The gray zone's floor (-1 to 1): nothing scoring below it is returned. The service's when absent. */
  readonly min?: number;
  /** The gray zone's ceiling (-1 to 1): from it, a match is high confidence. The service's when absent. */
  readonly max?: number;
  /** Matches to return in all, 1 to 100; the service's default when absent. */
  readonly limit?: number;
  /** On the table's metadata fields, in Vectorize's operators. */
  readonly filters?: TableFilters[TableOf<S>];
  /** By meaning (`semantic`, the default), by words (`keyword`) or both fused (`hybrid`). */
  readonly mode?: SearchMode;
} & Shorthands<S>;

/** The option names of each service call, shorthands aside. */
export const optionNames = {
  search: ["limit", "threshold", "filters", "mode"],
  findWithGrayZone: ["min", "max", "limit", "filters", "mode"],
} as const;

/**
 * The request of a `search` or `findWithGrayZone` call on `service`: the options as given,
 * with every shorthand moved into `filters`. An unknown option, or a shorthand whose field
 * `filters` names too, is refused before any call.
 */
export function serviceRequest(
  service: ServiceName,
  method: keyof typeof optionNames,
  text: string,
  options: object | undefined,
): { text: string; filters?: WireFilter } & Record<string, unknown> {
  const shorthands: Readonly<Record<string, string>> = services[service].shorthands;
  const names: readonly string[] = optionNames[method];
  const request: Record<string, unknown> = { text };
  const equalities: [alias: string, value: unknown][] = [];
  for (const [name, value] of Object.entries(options ?? {})) {
    if (value === undefined) continue;
    if (names.includes(name)) {
      request[name] = value;
    } else if (Object.hasOwn(shorthands, name)) {
      equalities.push([name, value]);
    } else {
      const known = [...names, ...Object.keys(shorthands)].join(", ");
      throw invalid(`\`${name}\` is not an option of \`${service}.${method}\` (options: ${known})`);
    }
  }
  const given = compactFilter(request["filters"], "filters");
  delete request["filters"];
  if (given !== undefined || equalities.length > 0) {
    const filters: Record<string, unknown> = { ...given };
    for (const [alias, value] of equalities) {
      const field = shorthands[alias] as string;
      if (Object.hasOwn(filters, field)) {
        throw invalid(`\`${alias}\` and \`filters.${field}\` both filter on \`${field}\`: give one of them`);
      }
      Object.defineProperty(filters, field, { value, enumerable: true, writable: true, configurable: true });
    }
    request["filters"] = filters;
  }
  return request as { text: string; filters?: WireFilter };
}

/**
 * The filter option `name` without its undefined fields (Workers RPC would carry them as
 * fields), or `undefined` for no filter. Anything but an object is refused.
 */
export function compactFilter(filter: unknown, name: string): WireFilter | undefined {
  if (filter === undefined || filter === null) return undefined;
  if (!isObject(filter)) throw invalid(`\`${name}\` must be an object of fields`);
  return Object.fromEntries(Object.entries(filter).filter(([, condition]) => condition !== undefined)) as WireFilter;
}

/** `object` without its undefined properties. */
export function defined<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T;
}
