/**
 * Who may do what, for an app that checks its members itself: search-worker and the queue take
 * the organization a bound caller names and check no role (binding to them is the privilege),
 * so an app that calls them for its users must refuse what the gateway would refuse. The rule
 * is the gateway's, already resolved from embeddings.toml into {@link access}.
 *
 * ```ts
 * if (!allowed(member.role, "search", services.claimSimilarity.table)) return forbidden();
 * ```
 *
 * @module
 */

import { access } from "./embeddings.generated.ts";
import type { Action, TableName } from "./embeddings.generated.ts";

/** Per action, the roles allowed: the shape of `access.project` and of each table's rule. */
export type AccessRule = { readonly [A in Action]: readonly string[] };

/** The shape of {@link access}: the project-wide rule, and each table's. */
export interface AccessTable {
  readonly project: AccessRule;
  readonly tables: { readonly [table: string]: AccessRule };
}

/**
 * The roles of one `member.role`: better-auth keeps several in one comma-separated value, and
 * each counts (as in the gateway, blanks around a name are no part of it).
 */
export function memberRoles(role: string): string[] {
  return role
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
}

/**
 * Whether a member whose `member.role` is `role` may do `action`: on `table` when the action is
 * on one (its records, its search services, a job bound to one of its records), else under the
 * project-wide rule. One of the member's roles allowed is enough. A table the config does not
 * have allows nothing.
 */
export function allowed(role: string, action: Action, table?: TableName): boolean {
  return allowedIn(access, role, action, table);
}

/** {@link allowed} under any access table of the generated one's shape. */
export function allowedIn(rules: AccessTable, role: string, action: Action, table?: string): boolean {
  // Own properties only: a name such as `__proto__` or `constructor` must find no rule.
  const rule = table === undefined ? rules.project : Object.hasOwn(rules.tables, table) ? rules.tables[table] : undefined;
  const roles = rule !== undefined && Object.hasOwn(rule, action) ? rule[action] : undefined;
  if (!Array.isArray(roles) || typeof role !== "string") return false;
  return memberRoles(role).some((name) => roles.includes(name));
}
