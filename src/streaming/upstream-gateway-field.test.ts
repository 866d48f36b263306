import assert from "node:assert/strict";
import { test } from "node:test";
import { takeUpstreamGatewayField } from "./upstream-gateway-field.ts";

test("no x_gateway: nothing changes, undefined (the event's text may go on as it came)", () => {
  const json = { id: "a", usage: { prompt_tokens: 1 } };
  assert.equal(takeUpstreamGatewayField(json, true), undefined);
  assert.deepEqual(json, { id: "a", usage: { prompt_tokens: 1 } });
});

test("an upstream's x_gateway is taken off: its continuation marker, its estimate mark without a usage", () => {
  const json: Record<string, unknown> = {
    id: "a",
    x_gateway: { continuation: { provider: "p" }, usage_estimated: true },
  };
  assert.deepEqual(takeUpstreamGatewayField(json, false), { isUsageEstimated: false });
  assert.deepEqual(json, { id: "a" });
});

test("an upstream gateway's estimate beside a usage is kept, as the gateway's own mark alone", () => {
  const json: Record<string, unknown> = { usage: {}, x_gateway: { usage_estimated: true, continuation: null } };
  assert.deepEqual(takeUpstreamGatewayField(json, true), { isUsageEstimated: true });
  assert.deepEqual(json.x_gateway, { usage_estimated: true });
  const hostile: Record<string, unknown> = { usage: {}, x_gateway: { usage_estimated: "yes" } };
  assert.deepEqual(takeUpstreamGatewayField(hostile, true), { isUsageEstimated: false });
  assert.equal(hostile.x_gateway, undefined);
});

test("a Responses event: the response's x_gateway (and a top-level one) taken off, its estimate kept on the response", () => {
  const response: Record<string, unknown> = { usage: {}, x_gateway: { usage_estimated: true } };
  const event: Record<string, unknown> = { type: "response.completed", response, x_gateway: { other: 1 } };
  assert.deepEqual(takeUpstreamGatewayField(event, true), { isUsageEstimated: true });
  assert.equal(event.x_gateway, undefined);
  assert.deepEqual(response.x_gateway, { usage_estimated: true });
});
