import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { parseConfigText } from "../config/load.ts";
import type { GatewayConfig } from "../config/types.ts";
import { createPresetResolver, loadPresets } from "../providers/presets.ts";
import { createObservers } from "./observers.ts";
import { openBooks } from "./open-books.ts";

test("createObservers that throws after building the OTLP exporter and the request log file closes them: no timer is left running", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-observers-"));
  const { config } = parseConfigText(
    `providers:\n  - name: p\n    base_url: http://127.0.0.1:9/v1\n    api_key: k\n    models:\n      m: {}\n` +
      `traces:\n  otlp_endpoint: http://127.0.0.1:9\nrequest_log:\n  file: ${JSON.stringify(join(dir, "requests.jsonl"))}\n` +
      `state:\n  path: ":memory:"\n`,
    "test.yaml",
    { env: {}, resolvePreset: createPresetResolver(loadPresets({})) },
  );
  const { runtime, keptResponses, batchStore } = await openBooks(config, {});
  t.after(() => Promise.allSettled([keptResponses.close(), batchStore.close(), runtime.close()]));
  // Read after the exporter, the request log file and its backend are built (the Observers' settings): any later
  // step that throws stands for the others.
  const failing = Object.create(config, {
    metrics: {
      get() {
        throw new Error("metrics settings unreadable");
      },
    },
  }) as GatewayConfig;

  const running = new Set<number>();
  const hook = createHook({
    init(asyncId, type) {
      if (type === "Timeout") running.add(asyncId);
    },
    destroy(asyncId) {
      running.delete(asyncId);
    },
  }).enable();
  try {
    await assert.rejects(createObservers(failing, runtime, { info: () => {}, warn: () => {} }, {}), {
      message: "metrics settings unreadable",
    });
    // Those created by the call (not the waits below); a cleared timer's destroy is reported a little later.
    const created = [...running];
    const left = () => created.filter((asyncId) => running.has(asyncId));
    for (let waitedMs = 0; left().length > 0 && waitedMs < 2_000; waitedMs += 20) await sleep(20);
    assert.equal(created.length, 2, "the exporter's and the request log file's flush timers");
    assert.deepEqual(left(), [], "timers created by createObservers are still running");
  } finally {
    hook.disable();
  }
});
