import assert from "node:assert/strict";
import { test } from "node:test";
import { LongToolNames } from "./long-tool-names.ts";

test("a name chat takes is kept; a longer one is cut with a hash of the whole name and maps back", () => {
  const names = new LongToolNames();
  assert.equal(names.upstream("get_weather"), "get_weather");
  const long = `mcp__server__${"x".repeat(60)}`;
  const upstream = names.upstream(long);
  assert.equal(upstream.length, 64);
  assert.match(upstream, /^mcp__server__x+_[0-9a-f]{8}$/);
  assert.equal(names.client(upstream), long);
  assert.equal(names.client("get_weather"), "get_weather");
  assert.equal(names.client("unknown"), "unknown");
  // A function of the name alone: the same on every request; two long names sharing their first 55 differ.
  assert.equal(new LongToolNames().upstream(long), upstream);
  assert.notEqual(names.upstream(`${long}y`), upstream);
  assert.equal(names.upstream("y".repeat(64)), "y".repeat(64));
});

test("a shortened name answered in another letter case maps back, unless another offered name reads the same", () => {
  const names = new LongToolNames();
  const long = `mcp__Acme-Wiki__${"SearchPages".repeat(6)}`;
  const upstream = names.upstream(long);
  assert.equal(names.upstream("Get_Weather"), "Get_Weather");
  assert.equal(names.client(upstream.toLowerCase()), long);
  assert.equal(names.client(upstream.toUpperCase()), long);
  assert.equal(names.client("get_weather"), "get_weather", "a name kept as it came is not the mapping's to change");
  const ambiguous = new LongToolNames();
  const shortened = ambiguous.upstream(long);
  ambiguous.upstream(shortened.toLowerCase());
  assert.equal(ambiguous.client(shortened.toLowerCase()), shortened.toLowerCase(), "the offered name itself");
  assert.equal(ambiguous.client(shortened.toUpperCase()), shortened.toUpperCase(), "two names fold alike: left");
  assert.equal(ambiguous.client(shortened), long);
});

test("a name with characters providers refuse is made valid, with a hash of the whole name, and maps back", () => {
  const names = new LongToolNames();
  const dotted = names.upstream("github.issues/create issue");
  assert.match(dotted, /^github_issues_create_issue_[0-9a-f]{8}$/);
  assert.equal(names.client(dotted), "github.issues/create issue");
  // Names that read alike once made valid stay apart, and apart from the valid one.
  const slashed = names.upstream("github.issues.create/issue");
  assert.notEqual(slashed, dotted);
  assert.equal(names.upstream("github_issues_create_issue"), "github_issues_create_issue");
  assert.equal(names.upstream("a-b_C9"), "a-b_C9");
  const longDotted = names.upstream(`server.${"x".repeat(80)}`);
  assert.equal(longDotted.length, 64);
  assert.match(longDotted, /^server_x+_[0-9a-f]{8}$/);
});

test("a client name that is another's renamed form: the renamed one is hashed again, both map back", () => {
  const dotted = "server.tool";
  const taken = new LongToolNames().upstream(dotted);
  assert.match(taken, /^server_tool_[0-9a-f]{8}$/);
  // Claimed first (as the doors do), the literal name keeps itself whatever the order the names are asked in.
  const names = new LongToolNames();
  names.claim([dotted, taken, 42]);
  const renamed = names.upstream(dotted);
  assert.notEqual(renamed, taken);
  assert.match(renamed, /^server_tool_[0-9a-f]{8}$/);
  assert.equal(names.upstream(taken), taken);
  assert.equal(names.upstream(dotted), renamed, "the same on every ask");
  assert.equal(names.client(renamed), dotted);
  assert.equal(names.client(taken), taken);
  // Unclaimed, the second asked moves: never two client names under one upstream name.
  const unclaimed = new LongToolNames();
  assert.equal(unclaimed.upstream(dotted), taken);
  const moved = unclaimed.upstream(taken);
  assert.notEqual(moved, taken);
  assert.equal(unclaimed.client(moved), taken);
  assert.equal(unclaimed.client(taken), dotted);
});
