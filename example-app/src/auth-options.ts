// The better-auth options that decide the database schema, apart from the database itself, so
// that scripts/schema-check.mjs plans better-auth's migration for exactly this app.
import type { BetterAuthOptions } from "better-auth";
import { organization } from "better-auth/plugins";
import { createAccessControl } from "better-auth/plugins/access";
import { adminAc, defaultStatements, memberAc, ownerAc } from "better-auth/plugins/organization/access";
import { roles } from "d1-embeddings-client";

// better-auth's organization permissions (invitations, members, the organization itself) for
// owner, admin and member are its defaults, so that managing an organization works as it
// documents. A role only embeddings.toml names (a `viewer`) gets a member's, the least
// better-auth gives: what such a role may do with the data is the access table's to say, and
// every /app route checks it there.
const ac = createAccessControl(defaultStatements);
const builtIn = { owner: ownerAc, admin: adminAc, member: memberAc };

/** Every role embeddings.toml names, and better-auth's three, with its better-auth permissions. */
export const organizationRoles = Object.fromEntries(
  roles.map((name) => [name, Object.hasOwn(builtIn, name) ? builtIn[name as keyof typeof builtIn] : ac.newRole(memberAc.statements)]),
);

export const schemaOptions = {
  emailAndPassword: { enabled: true },
  // `roles` replaces better-auth's list rather than adding to it: without its three here, an
  // owner could no longer invite anyone. An invitation naming a role outside it is refused
  // (`ROLE_NOT_FOUND`).
  plugins: [organization({ ac, roles: organizationRoles })],
} satisfies BetterAuthOptions;
