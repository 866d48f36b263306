// The Files and Batch routes (batch-routes.ts) registered at start, their module and the batch runner loaded at the
// first request to one of them (lazy-routes.ts), or at start when the books hold files or batches (a batch to
// resume, files and batches to expire) or are shared with other replicas (a batch one of them creates may be ours to
// run): a gateway that never saw a batch does not evaluate the runner and the JSONL scanning at start.
import type { FastifyInstance } from "fastify";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { batchRouteShapes } from "./batch-route-shapes.ts";
import type { BatchDoors, BatchSetup } from "./batch-routes.ts";
import { registerLazyRoutes, sharedLoad } from "./lazy-routes.ts";
import type { ProtocolAdapter } from "./protocol-adapters.ts";

export function registerBatchDoors(
  app: FastifyInstance,
  runtime: GatewayRuntime,
  setup: BatchSetup,
  responses: () => Promise<ProtocolAdapter>,
): void {
  let loaded: BatchDoors | undefined;
  let pending: Promise<BatchDoors> | undefined;
  const doors = sharedLoad(async () => {
    loaded = (await import("./batch-routes.ts")).batchDoors(runtime, setup, responses, app.log);
    return loaded;
  });
  const load = (): Promise<BatchDoors> => {
    pending = doors();
    return pending;
  };
  registerLazyRoutes(
    app,
    batchRouteShapes(runtime.snapshot.config.batches.maxFileBytes),
    async () => (await load()).handlers,
    "Files and Batch",
  );
  app.addHook("onClose", async () => {
    // A load under way (at start, or a first request) ends before its runner is closed.
    await pending?.catch(() => undefined);
    await loaded?.runner.close();
  });
  const { books } = setup;
  (books.isShared ? Promise.resolve(false) : books.isEmpty())
    .then((isEmpty) => (isEmpty ? undefined : load()))
    .catch((error: unknown) => {
      // The routes still load at their first request; until then no batch is resumed.
      app.log.error(
        { err: error },
        "the batch runner could not be started; it is tried again at the next batch request",
      );
    });
}
