// Who is asking, for which organization: the signed-in user's active organization, as
// better-auth's session says, and only while the user is still a member of it.
import type { Auth } from "./auth";
import type { Env } from "./env";
import { HttpError } from "./http";

export async function activeOrganization(auth: Auth, env: Env, request: Request): Promise<string> {
  const session = await auth.api.getSession({ headers: request.headers });
  if (!session) {
    throw new HttpError(401, "unauthenticated", "sign in first (POST /api/auth/sign-in/email)");
  }
  const organizationId = session.session.activeOrganizationId;
  if (!organizationId) {
    throw new HttpError(403, "forbidden", "no active organization (POST /api/auth/organization/set-active)");
  }
  // better-auth leaves a removed member's other sessions pointing at the organization; the
  // gateway refuses them, and so does this app.
  const member = await env.DB.prepare(
    `SELECT 1 FROM "member" WHERE "organizationId" = ?1 AND "userId" = ?2`,
  )
    .bind(organizationId, session.user.id)
    .first();
  if (!member) throw new HttpError(403, "forbidden", "not a member of the active organization");
  return organizationId;
}
