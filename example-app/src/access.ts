// The role check of every /app route, the gateway's (api-worker's `Caller::require`) over the
// access table generated from embeddings.toml. search-worker and the queue take the organization
// this app names and check no role: this is the only check between a member and them.
import { allowed, memberRoles } from "d1-embeddings-client";
import type { Action, TableName } from "d1-embeddings-client";
import { HttpError } from "./http";
import type { Member } from "./tenant";

/** Refuses with the gateway's 403 unless one of the member's roles may do `action`. */
export function requireRole(member: Member, action: Action, table?: TableName): void {
  if (allowed(member.role, action, table)) return;
  const on = table === undefined ? "" : ` on \`${table}\``;
  throw new HttpError(403, "forbidden", `role \`${memberRoles(member.role).join(",")}\` may not ${action}${on}`);
}
