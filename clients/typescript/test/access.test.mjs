// Run by `npm test`. The access table itself is resolved in Rust by `shared`'s rule (client-types
// tests that); here, that `allowed` reads it as the gateway's role check does: one of a member's
// comma-separated roles is enough, a table's rule is the table's, and a name the table does not
// have (role, table or action) allows nothing.

import assert from "node:assert/strict";
import { test } from "node:test";

import { access, actions, allowed, allowedIn, memberRoles, roles, tables } from "../src/index.ts";

const tableNames = Object.keys(tables);

test("allowed answers what the generated table lists, for every role, action and table", () => {
  for (const action of actions) {
    for (const role of roles) {
      assert.equal(allowed(role, action), access.project[action].includes(role), `${role} ${action}`);
      for (const table of tableNames) {
        const listed = access.tables[table][action].includes(role);
        assert.equal(allowed(role, action, table), listed, `${role} ${action} on ${table}`);
      }
    }
  }
});

test("every action has a rule, and better-auth's own roles are known", () => {
  for (const rule of [access.project, ...Object.values(access.tables)]) {
    assert.deepEqual(Object.keys(rule), [...actions]);
  }
  for (const role of ["owner", "admin", "member"]) assert.ok(roles.includes(role), role);
  assert.deepEqual(Object.keys(access.tables), tableNames);
});

test("several roles in one member.role each count", () => {
  assert.deepEqual(memberRoles("member,viewer"), ["member", "viewer"]);
  assert.deepEqual(memberRoles(" admin , ,owner "), ["admin", "owner"]);
  assert.deepEqual(memberRoles(""), []);
  const rules = {
    project: rule({ embed: ["editor"], search: ["viewer"] }),
    tables: {},
  };
  assert.equal(allowedIn(rules, "viewer,editor", "embed"), true, "the second role allows it");
  assert.equal(allowedIn(rules, "editor , viewer", "search"), true, "blanks around a name");
  assert.equal(allowedIn(rules, "viewer", "embed"), false);
  assert.equal(allowedIn(rules, "viewer editor", "embed"), false, "one name with a space is neither");
  assert.equal(allowedIn(rules, "", "search"), false);
});

test("a table's rule holds on that table, the project's without one", () => {
  const rules = {
    project: rule({ update: ["member", "viewer"] }),
    tables: { claims: rule({ update: ["owner"] }), notes: rule({ update: ["member", "viewer"] }) },
  };
  assert.equal(allowedIn(rules, "member", "update"), true);
  assert.equal(allowedIn(rules, "member", "update", "notes"), true);
  assert.equal(allowedIn(rules, "member", "update", "claims"), false);
  assert.equal(allowedIn(rules, "owner", "update", "claims"), true);
  assert.equal(allowedIn(rules, "owner", "update"), false);
});

test("a name the table does not have allows nothing", () => {
  const everyone = roles.join(",");
  assert.equal(allowed("superuser", "read"), false);
  for (const table of ["nope", "__proto__", "constructor", "toString", "hasOwnProperty"]) {
    assert.equal(allowed(everyone, "read", table), false, table);
  }
  for (const action of ["__proto__", "constructor", "toString", "nope"]) {
    assert.equal(allowed(everyone, action), false, action);
    for (const table of tableNames) assert.equal(allowed(everyone, action, table), false, `${action} on ${table}`);
  }
  assert.equal(allowed(undefined, "read"), false);
  assert.equal(allowed(["owner"], "read"), false, "a role is a string, as member.role is");
});

/** An access rule: the given actions' roles, and no role for any other. */
function rule(given) {
  return Object.fromEntries(actions.map((action) => [action, given[action] ?? []]));
}
