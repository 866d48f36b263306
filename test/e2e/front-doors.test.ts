// Every front door is wired everywhere it must be: each EndpointSpec is its door (src/front-doors.ts), and for each
// one its paths (with and without `/v1`) reach the pipeline, its requests are counted under its own `endpoint` and
// `protocol` labels, `/v1/models` lists its route for its kind and the route explanation plans that kind. A door
// added as a spec but forgotten in a route table, a label set or the listing fails here without a test of its own.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ALL_FRONT_DOORS, type FrontDoor, pathsOf } from "../../src/front-doors.ts";
import { ENDPOINTS, SERVED_KINDS } from "../../src/pipeline/endpoints.ts";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";

const modelOfKind = (kind: string): string => `m-${kind}`;

test("every endpoint spec is one front door, with the door's facts, and every door has its spec", () => {
  assert.deepEqual(
    ENDPOINTS.map((endpoint) => endpoint.name),
    ALL_FRONT_DOORS.map((door) => door.name),
  );
  for (const [index, door] of ALL_FRONT_DOORS.entries()) {
    const endpoint = ENDPOINTS[index];
    for (const fact of Object.keys(door) as (keyof FrontDoor)[]) {
      assert.equal(endpoint?.[fact], door[fact], `${door.name}: ${fact}`);
    }
  }
  assert.equal(new Set(ALL_FRONT_DOORS.map((door) => door.path)).size, ALL_FRONT_DOORS.length, "two doors, one path");
});

/** A body that reaches the pipeline and is refused there (so it leaves a record), in the door's body type. */
async function refusedBody(door: FrontDoor): Promise<{ body: string; headers: Record<string, string> }> {
  const model = modelOfKind(door.kind);
  if (!door.isMultipart) return { body: JSON.stringify({ model }), headers: { "content-type": "application/json" } };
  const form = new FormData();
  form.append("model", model);
  const encoder = new Request("http://localhost/", { method: "POST", body: form });
  return { body: await encoder.text(), headers: { "content-type": encoder.headers.get("content-type") ?? "" } };
}

async function startEveryKind(t: Parameters<typeof useMock>[0]): Promise<TestGateway> {
  const mock = await useMock(t);
  const models = SERVED_KINDS.map((kind) => `      ${modelOfKind(kind)}: { id: up-${kind}, kind: ${kind} }`).join("\n");
  return useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
${models}
`,
  );
}

test("every door's paths reach the pipeline, its requests carry its labels, and its kind lists and explains its route", async (t) => {
  const gateway = await startEveryKind(t);
  for (const endpoint of ENDPOINTS) {
    for (const path of pathsOf(endpoint)) {
      const answer = await send(gateway, "POST", path, await refusedBody(endpoint));
      // Refused by the door's own checks (a missing field), not unknown (404) nor the wrong body type for the route.
      assert.equal(answer.status, 400, `${endpoint.name} ${path}: ${answer.text}`);
      assert.doesNotMatch(answer.text, /invalid_content_type|Unsupported Content-Type/, `${endpoint.name} ${path}`);
    }
  }

  const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
  for (const endpoint of ENDPOINTS) {
    assert.equal(
      sumOf(metrics, "llm_gateway_requests_total", { endpoint: endpoint.name, protocol: endpoint.protocol }),
      2,
      `${endpoint.name}: its two requests under its endpoint and protocol labels`,
    );
  }

  const listed = (await send(gateway, "GET", "/v1/models")).json as {
    data: { id: string; kind: string; endpoints: string[] }[];
  };
  for (const kind of SERVED_KINDS) {
    const entry = listed.data.find((model) => model.id === modelOfKind(kind));
    assert.equal(entry?.kind, kind);
    assert.deepEqual(
      entry?.endpoints,
      ENDPOINTS.filter((endpoint) => endpoint.kind === kind).map((endpoint) => endpoint.path),
      kind,
    );
    const route = await send(gateway, "GET", `/v1/gateway/route?model=${modelOfKind(kind)}&kind=${kind}&tokens=10`);
    assert.equal(route.status, 200, route.text);
    const explained = route.json as { kind: string; candidates: { upstream_id: string }[] };
    assert.equal(explained.kind, kind);
    assert.deepEqual(
      explained.candidates.map((candidate) => candidate.upstream_id),
      [`up-${kind}`],
    );
  }
});
