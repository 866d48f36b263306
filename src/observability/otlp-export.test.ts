// The OTLP exporter against a real loopback collector scripted per export: retries on OTLP's retryable answers (after
// their Retry-After), drops (counted) on the others, a bounded queue that drops the oldest, a close that does not wait
// past its bound for a collector that never answers; and spans that keep the record's trace ids.
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { otlpCollector } from "../../test/helpers/otlp-collector.ts";
import { attempt, record } from "../../test/helpers/records.ts";
import { type DropReason, OtlpTraceExporter, retryAfterMs, spansOf } from "./otlp-traces.ts";

function exporterFor(
  t: TestContext,
  url: string,
  options: Partial<ConstructorParameters<typeof OtlpTraceExporter>[0]>,
) {
  const drops: [number, DropReason][] = [];
  const errors: unknown[] = [];
  const exporter = new OtlpTraceExporter({
    url,
    serviceName: "test",
    serviceVersion: "0",
    flushIntervalMs: 60_000,
    onDropped: (count, reason) => drops.push([count, reason]),
    onError: (error) => errors.push(error),
    ...options,
  });
  t.after(() => exporter.close());
  return { exporter, drops, errors };
}

test("a 503 with Retry-After, then a 429, are retried; the batch arrives once taken, nothing dropped", async (t) => {
  const target = await otlpCollector(t, {
    answers: [
      { status: 503, headers: { "retry-after": "0" } },
      { status: 429, headers: { "retry-after": "0" } },
      { status: 200 },
    ],
  });
  const { exporter, drops, errors } = exporterFor(t, target.tracesUrl, {});
  exporter.observe(record({ attempts: [attempt({ provider: "alpha" })] }));
  await exporter.flush();
  assert.equal(target.bodies.length, 3, "two retries");
  assert.equal(new Set(target.bodies).size, 1, "the same batch each time");
  assert.deepEqual(drops, []);
  assert.deepEqual(errors, []);
});

test("a collector answering 503 with Retry-After: 0 every time is not retried in a tight loop", async (t) => {
  const target = await otlpCollector(t, {
    answers: Array.from({ length: 10_000 }, () => ({ status: 503, headers: { "retry-after": "0" } })),
  });
  const { exporter, drops } = exporterFor(t, target.tracesUrl, { exportTimeoutMs: 1_000 });
  exporter.observe(record({ attempts: [] }));
  await exporter.flush();
  // On the change: ~250 exports of the same batch in the second (every Retry-After of 0 taken as "at once").
  assert.ok(target.bodies.length <= 12, `${target.bodies.length} exports in 1 s`);
  assert.deepEqual(drops, [[1, "export_failed"]]);
});

test("a 400 is not retried: the batch is dropped and counted, and the next one goes", async (t) => {
  const target = await otlpCollector(t, { answers: [{ status: 400 }] });
  const { exporter, drops, errors } = exporterFor(t, target.tracesUrl, {});
  exporter.observe(record({ attempts: [attempt({ provider: "alpha" })] }));
  await exporter.flush();
  assert.equal(target.bodies.length, 1);
  assert.deepEqual(drops, [[2, "export_failed"]]);
  assert.equal(errors.length, 1);
  exporter.observe(record({ attempts: [] }));
  await exporter.flush();
  assert.equal(target.bodies.length, 2);
  assert.equal(target.spansIn(target.bodies[1]).length, 1);
});

test("the queue is bounded: past max_queue_spans the oldest spans are dropped and counted, the newest sent", async (t) => {
  const target = await otlpCollector(t);
  const { exporter, drops } = exporterFor(t, target.tracesUrl, { maxQueueSpans: 3 });
  for (const id of ["r1", "r2", "r3", "r4"]) exporter.observe(record({ id, attempts: [] }));
  assert.deepEqual(drops, [[1, "queue_full"]]);
  await exporter.flush();
  const ids = target
    .spansIn(target.bodies[0])
    .map((span) => span.attributes.find((entry) => entry.key === "llm_gateway.request_id")?.value);
  assert.deepEqual(ids, [{ stringValue: "r2" }, { stringValue: "r3" }, { stringValue: "r4" }]);
});

test("close does not wait past export_timeout_ms for a collector that never answers; what it held is counted", async (t) => {
  const target = await otlpCollector(t, { answers: ["hang", "hang", "hang"] });
  const { exporter, drops } = exporterFor(t, target.tracesUrl, { exportTimeoutMs: 300 });
  exporter.observe(record({ attempts: [attempt({ provider: "alpha" })] }));
  await exporter.close();
  assert.equal(target.bodies.length >= 1, true);
  assert.deepEqual(
    drops.map(([, reason]) => reason),
    ["export_failed"],
  );
  // Closed: later records are not queued.
  exporter.observe(record({ attempts: [] }));
  assert.equal(drops.length, 1);
});

test("a record with a trace keeps its ids: the caller's span is the parent, each attempt's span is the id it was sent", () => {
  const trace = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "1111111111111111", isSampled: true };
  const spans = spansOf(
    record({
      trace: { ...trace, parentSpanId: "00f067aa0ba902b7" },
      attempts: [
        attempt({ provider: "alpha", spanId: "2222222222222222" }),
        attempt({ provider: "beta", spanId: "3333333333333333" }),
      ],
    }),
  );
  assert.deepEqual(
    spans.map((span) => [span.traceId, span.spanId, span.parentSpanId]),
    [
      [trace.traceId, "1111111111111111", "00f067aa0ba902b7"],
      [trace.traceId, "2222222222222222", "1111111111111111"],
      [trace.traceId, "3333333333333333", "1111111111111111"],
    ],
  );
  assert.deepEqual(spansOf(record({ trace: { ...trace, isSampled: false } })), [], "not sampled: not exported");
  // A record without a trace (a batch line) is sampled as a new trace.
  assert.deepEqual(
    spansOf(record({ attempts: [] }), () => false),
    [],
  );
  assert.equal(spansOf(record({ attempts: [] }), () => true).length, 1);
});

test("Retry-After: seconds or an HTTP date", () => {
  assert.equal(retryAfterMs("2"), 2_000);
  assert.equal(retryAfterMs("Thu, 01 Jan 1970 00:00:10 GMT", 4_000), 6_000);
  assert.equal(retryAfterMs("soon"), undefined);
  assert.equal(retryAfterMs(undefined), undefined);
});
