// The Files and Batch routes (batch-routes.ts), registered at start while their handlers load at the first request
// (batch-doors.ts, lazy-routes.ts). Kept by hand, next to the paths: src/server/lazy-routes.test.ts holds the list
// equal to what batch-routes.ts registers.
import type { RouteShape } from "./lazy-routes.ts";
import { BATCHES_PATHS, FILES_PATHS } from "./protocol-paths.ts";

/** Bytes of an upload beyond its file (the multipart framing, `purpose`). */
export const UPLOAD_OVERHEAD_BYTES = 64 * 1024;

/** The routes batch-routes.ts registers (a test holds the two equal); an upload's limit from `batches.max_file_bytes`. */
export function batchRouteShapes(maxFileBytes: number): RouteShape[] {
  return [
    ...FILES_PATHS.flatMap((base): RouteShape[] => [
      { method: "POST", url: base, bodyLimit: maxFileBytes + UPLOAD_OVERHEAD_BYTES },
      { method: "GET", url: base },
      { method: "GET", url: `${base}/:id` },
      { method: "GET", url: `${base}/:id/content` },
      { method: "DELETE", url: `${base}/:id` },
    ]),
    ...BATCHES_PATHS.flatMap((base): RouteShape[] => [
      { method: "POST", url: base },
      { method: "GET", url: base },
      { method: "GET", url: `${base}/:id` },
      { method: "POST", url: `${base}/:id/cancel` },
    ]),
  ];
}
