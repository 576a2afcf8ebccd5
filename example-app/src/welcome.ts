// GET /: what this app is, and how to start with curl.
import { roles } from "d1-embeddings-client";

export function welcome(origin: string): Response {
  const page = `example-app: an application Worker built on D1 embeddings.

Accounts and organizations are better-auth's (email and password, the organization plugin),
kept in the same D1 database the D1 embeddings gateway reads, so the session cookie signed in
here works there too. Searches go to search-worker over a service binding, for the signed-in
user's active organization, through d1-embeddings-client.

Sign up (the cookie lands in cookies.txt), create an organization and make it active:

  curl -s -c cookies.txt ${origin}/api/auth/sign-up/email -H 'content-type: application/json' \\
    -d '{"name": "Ann", "email": "ann@example.com", "password": "a long password"}'
  curl -s -b cookies.txt -c cookies.txt ${origin}/api/auth/organization/create \\
    -H 'content-type: application/json' -H 'origin: ${origin}' \\
    -d '{"name": "Newsroom", "slug": "newsroom"}'
  curl -s -b cookies.txt -c cookies.txt ${origin}/api/auth/organization/set-active \\
    -H 'content-type: application/json' -H 'origin: ${origin}' \\
    -d '{"organizationSlug": "newsroom"}'

(better-auth checks the origin of every request that carries a cookie, hence -H 'origin: …'.)
Then search, for that organization:

  curl -s -b cookies.txt ${origin}/app/search/claimSimilarity -H 'content-type: application/json' \\
    -d '{"text": "Police arrested three suspects"}'

Routes: POST /app/search/:service {text, limit?, threshold?, filters?, storyId?},
POST /app/gray-zone/:service {text, min?, max?, limit?, filters?, storyId?},
POST /app/embed/:service {text}, POST /app/pipeline {content, model?, table?, id?} (202 with
the job id), and better-auth under /api/auth (sign-in/email, get-session, sign-out,
organization/...). storyId stands for the filter {"story_id": ...}.

Each route is allowed to your role in the organization as the gateway allows the same call
(embeddings.toml's [access] rules); a refusal is a 403. An owner or admin invites others with
a role (${roles.join(", ")}):

  curl -s -b cookies.txt ${origin}/api/auth/organization/invite-member \\
    -H 'content-type: application/json' -H 'origin: ${origin}' \\
    -d '{"email": "vic@example.com", "role": "${roles[roles.length - 1]}"}'

and the invitee, signed in, accepts with POST /api/auth/organization/accept-invitation
{"invitationId": ...}.
`;
  return new Response(page, { headers: { "content-type": "text/plain; charset=utf-8" } });
}
