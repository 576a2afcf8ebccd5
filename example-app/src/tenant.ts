// Who is asking, for which organization, with which role: the signed-in user's active
// organization, as better-auth's session says, only while the user is still a member of it, and
// that membership's role, which every route checks against the access rules of embeddings.toml.
import type { Auth } from "./auth";
import type { Env } from "./env";
import { HttpError } from "./http";

export interface Member {
  organizationId: string;
  /** better-auth's `member.role`: one role, or several comma-separated. */
  role: string;
}

export async function activeMember(auth: Auth, env: Env, request: Request): Promise<Member> {
  const session = await auth.api.getSession({ headers: request.headers });
  if (!session) {
    throw new HttpError(401, "unauthenticated", "sign in first (POST /api/auth/sign-in/email)");
  }
  const organizationId = session.session.activeOrganizationId;
  if (!organizationId) {
    throw new HttpError(403, "forbidden", "no active organization (POST /api/auth/organization/set-active)");
  }
  // Read here, not from the session: better-auth leaves a removed member's other sessions
  // pointing at the organization, and a role changed since sign-in must count at once. The
  // gateway reads the same row.
  const member = await env.DB.prepare(
    `SELECT "role" FROM "member" WHERE "organizationId" = ?1 AND "userId" = ?2`,
  )
    .bind(organizationId, session.user.id)
    .first<{ role: string }>();
  if (!member) throw new HttpError(403, "forbidden", "not a member of the active organization");
  return { organizationId, role: member.role };
}
