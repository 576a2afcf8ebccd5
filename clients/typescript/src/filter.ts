/**
 * Metadata filters, in Vectorize's operators and under the rules search-worker checks
 * (`shared::filter`, api-worker's `Filter_{table}` schemas):
 *
 * - a field maps to a scalar, short for `{ $eq: scalar }`, or to an object of operators;
 * - the object holds one of `$eq`, `$ne`, `$in`, `$nin` (the last two take arrays), or a range
 *   of at most one lower bound (`$gt` | `$gte`) and one upper bound (`$lt` | `$lte`);
 * - every field given must hold. A record without the field (or with it null) matches no
 *   operator, `$ne` and `$nin` included;
 * - the filter, as compact JSON, is under 2,048 bytes (search-worker checks it).
 *
 * The organization is never a filter: search-worker applies it before any.
 *
 * @module
 */

/** A value a metadata field is compared with. */
export type Scalar = string | number | boolean;

/** A value a range compares: numbers with numbers, strings with strings. */
export type Ordered = string | number;

/** Every operator. */
type Operator = "$eq" | "$ne" | "$in" | "$nin" | "$gt" | "$gte" | "$lt" | "$lte";

/** Exactly the operators `Given`, each taking a `T`: any other operator is a type error. */
type Exactly<Given extends Operator, T> = { readonly [O in Given]: T } & {
  readonly [O in Exclude<Operator, Given>]?: never;
};

/** A range: one bound, or a lower bound with an upper one. */
export type Range =
  | Exactly<"$gt", Ordered>
  | Exactly<"$gte", Ordered>
  | Exactly<"$lt", Ordered>
  | Exactly<"$lte", Ordered>
  | Exactly<"$gt" | "$lt", Ordered>
  | Exactly<"$gt" | "$lte", Ordered>
  | Exactly<"$gte" | "$lt", Ordered>
  | Exactly<"$gte" | "$lte", Ordered>;

/** What one field must satisfy. */
export type Condition =
  | Scalar
  | Exactly<"$eq", Scalar>
  | Exactly<"$ne", Scalar>
  | Exactly<"$in", readonly Scalar[]>
  | Exactly<"$nin", readonly Scalar[]>
  | Range;

/**
 * A filter on the metadata fields `Field`, and on no other. A table without metadata fields
 * (`Field` is `never`) takes only the empty filter.
 */
export type FieldFilter<Field extends string> = [Field] extends [never]
  ? { readonly [field: string]: never }
  : { readonly [F in Field]?: Condition };
