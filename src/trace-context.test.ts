import assert from "node:assert/strict";
import { test } from "node:test";
import { isInRatio, samplerOf } from "./observability/otlp-settings.ts";
import {
  newSpanId,
  newTraceId,
  parseTraceparent,
  requestTrace,
  traceparentOf,
  validTracestate,
} from "./trace-context.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

test("a valid traceparent gives its trace id, parent id and sampled flag", () => {
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`), { traceId: TRACE, parentSpanId: SPAN, isSampled: true });
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.isSampled, false);
  // Only bit 0 is "sampled"; other flag bits (Level 2's random flag) are not.
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-02`)?.isSampled, false);
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-03`)?.isSampled, true);
  // A later version is read for its first four fields, whatever follows a dash.
  assert.equal(parseTraceparent(`01-${TRACE}-${SPAN}-01-what-comes-next`)?.traceId, TRACE);
  assert.equal(parseTraceparent(`01-${TRACE}-${SPAN}-01`)?.traceId, TRACE);
});

test("an invalid traceparent is ignored, by the W3C rules", () => {
  for (const header of [
    `ff-${TRACE}-${SPAN}-01`, // version ff is forbidden
    `00-${"0".repeat(32)}-${SPAN}-01`, // all-zero trace id
    `00-${TRACE}-${"0".repeat(16)}-01`, // all-zero parent id
    `00-${TRACE.toUpperCase()}-${SPAN}-01`, // uppercase hex
    `00-${TRACE}-${SPAN.toUpperCase()}-01`,
    `0A-${TRACE}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-0G`,
    `00-${TRACE.slice(1)}-${SPAN}-01`, // short trace id
    `00-${TRACE}-${SPAN}0-01`, // long parent id
    `00-${TRACE}-${SPAN}-01-`, // version 00 has exactly 55 characters
    `01-${TRACE}-${SPAN}-01x`, // a later version's next field starts with a dash
    `00_${TRACE}_${SPAN}_01`,
    `00-${TRACE}-${SPAN}-01, 00-${TRACE}-${SPAN}-01`, // sent twice (Node joins the two)
    "",
    undefined,
    ["a", "b"],
  ]) {
    assert.equal(parseTraceparent(header), undefined, String(header));
  }
});

test("tracestate: a valid list is sent on as received (headers joined), anything invalid drops it", () => {
  assert.equal(validTracestate("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  assert.equal(validTracestate("congo=t61rcWkgMzE , tenant@vendor=x"), "congo=t61rcWkgMzE,tenant@vendor=x");
  assert.equal(validTracestate(["congo=a", "rojo=b"]), "congo=a,rojo=b");
  assert.equal(validTracestate("Congo=a"), undefined, "uppercase key");
  assert.equal(validTracestate("congo=a,congo=b"), undefined, "a key twice");
  assert.equal(validTracestate("congo"), undefined);
  assert.equal(validTracestate("congo=a=b"), undefined);
  assert.equal(validTracestate(Array.from({ length: 33 }, (_, index) => `k${index}=v`).join(",")), undefined);
  assert.equal(validTracestate(`k=${"v".repeat(600)}`), undefined);
  assert.equal(validTracestate(""), undefined);
});

test("requestTrace: continued with a new span id; without a valid header, a new trace only when spans are exported", () => {
  const continued = requestTrace(`00-${TRACE}-${SPAN}-01`, "congo=a", undefined);
  assert.equal(continued?.traceId, TRACE);
  assert.equal(continued?.parentSpanId, SPAN);
  assert.equal(continued?.isSampled, true);
  assert.equal(continued?.traceState, "congo=a");
  assert.match(continued?.spanId ?? "", /^[0-9a-f]{16}$/);
  assert.notEqual(continued?.spanId, SPAN);
  // A tracestate without a valid traceparent is ignored with it.
  assert.equal(requestTrace(`ff-${TRACE}-${SPAN}-01`, "congo=a", undefined), undefined);
  assert.equal(requestTrace(undefined, undefined, undefined), undefined);
  const started = requestTrace(undefined, "congo=a", () => false);
  assert.match(started?.traceId ?? "", /^[0-9a-f]{32}$/);
  assert.equal(started?.parentSpanId, undefined);
  assert.equal(started?.traceState, undefined);
  assert.equal(started?.isSampled, false);
  // With a sampler the caller's flag is the sampler's to follow (or not).
  assert.equal(requestTrace(`00-${TRACE}-${SPAN}-00`, undefined, () => true)?.isSampled, true);
});

test("traceparentOf and new ids", () => {
  assert.equal(traceparentOf({ traceId: TRACE, isSampled: true }, SPAN), `00-${TRACE}-${SPAN}-01`);
  assert.equal(traceparentOf({ traceId: TRACE, isSampled: false }, SPAN), `00-${TRACE}-${SPAN}-00`);
  const spans = new Set(Array.from({ length: 2000 }, newSpanId));
  assert.equal(spans.size, 2000, "past the pool's refill, still distinct");
  for (const id of spans) assert.match(id, /^[0-9a-f]{16}$/);
  assert.match(newTraceId(), /^[0-9a-f]{32}$/);
  assert.ok(parseTraceparent(traceparentOf({ traceId: newTraceId(), isSampled: true }, newSpanId())) !== undefined);
});

test("OTEL_TRACES_SAMPLER: the spec's names, parent-based by default with traces.sample_ratio", () => {
  const low = `${"0".repeat(18)}${"0".repeat(14)}`.replace(/0$/, "1");
  const high = `${"0".repeat(18)}${"f".repeat(14)}`;
  assert.equal(samplerOf({}, 1)(high, undefined), true);
  assert.equal(samplerOf({}, 1)(high, false), false, "parent-based: the caller's flag decides");
  // The ratio keeps the most random ids (isInRatio below).
  assert.equal(samplerOf({}, 0.5)(high, undefined), true);
  assert.equal(samplerOf({}, 0.5)(low, undefined), false);
  assert.equal(samplerOf({ OTEL_TRACES_SAMPLER: "always_on" }, 0)(high, false), true);
  assert.equal(samplerOf({ OTEL_TRACES_SAMPLER: "always_off" }, 1)(low, true), false);
  assert.equal(samplerOf({ OTEL_TRACES_SAMPLER: "parentbased_always_off" }, 1)(low, undefined), false);
  assert.equal(samplerOf({ OTEL_TRACES_SAMPLER: "parentbased_always_off" }, 1)(low, true), true);
  const ratio = samplerOf({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" }, 1);
  assert.equal(ratio(high, false), true, "not parent-based");
  assert.equal(ratio(low, true), false);
  const parentRatio = samplerOf({ OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0" }, 1);
  assert.equal(parentRatio(low, true), true);
  assert.equal(parentRatio(low, undefined), false);
  // An argument that is not a ratio is 1, as the spec says.
  assert.equal(
    samplerOf({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "2" }, 1)(high, undefined),
    true,
  );
  // Blank is missing, not 0 (Number(" ") is 0: nothing was exported).
  assert.equal(
    samplerOf({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: " " }, 1)(high, undefined),
    true,
  );
  // An unknown sampler is the default.
  assert.equal(samplerOf({ OTEL_TRACES_SAMPLER: "jaeger_remote" }, 0)(high, undefined), false);
});

test("isInRatio keeps about the ratio of random trace ids, deterministically", () => {
  const ids = Array.from({ length: 4000 }, newTraceId);
  const kept = ids.filter((id) => isInRatio(id, 0.25)).length;
  assert.ok(kept > 800 && kept < 1200, `${kept} of 4000 at 0.25`);
  assert.deepEqual(
    ids.map((id) => isInRatio(id, 0.25)),
    ids.map((id) => isInRatio(id, 0.25)),
  );
  assert.ok(
    ids.filter((id) => isInRatio(id, 0.25)).every((id) => isInRatio(id, 0.5)),
    "a higher ratio keeps a superset",
  );
});

test("isInRatio keeps what OpenTelemetry's probability sampling keeps: randomness (last 56 bits) >= (1 - ratio) * 2^56", () => {
  // specification/trace/tracestate-probability-sampling.md: "If rv >= th, keep the span", th = (1 - p) * 2^56. On the
  // change the gateway kept rv < p * 2^56, the complement at 0.5: a collector or service sampling by the spec at the
  // same ratio kept exactly the traces the gateway dropped.
  const withRandomness = (hex14: string): string => `${"ab".repeat(9)}${hex14}`;
  assert.equal(isInRatio(withRandomness("80000000000000"), 0.5), true, "rv = th: kept");
  assert.equal(isInRatio(withRandomness("7fffffffffffff"), 0.5), false, "rv = th - 1: dropped (exactly, past 2^53)");
  assert.equal(isInRatio(withRandomness("ffffffffffffff"), 0.01), true, "the most random id is kept at any ratio");
  assert.equal(isInRatio(withRandomness("00000000000000"), 0.99), false, "the least random only at 1");
  assert.equal(isInRatio(withRandomness("00000000000000"), 1), true);
  assert.equal(isInRatio(withRandomness("c0000000000000"), 0.25), true);
  assert.equal(isInRatio(withRandomness("bfffffffffffff"), 0.25), false);
});
