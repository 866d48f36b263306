// Operator routes, guarded by `server.admin_keys` (separate from client keys: a client must not be able to
// wipe the gateway's knowledge of provider limits).
import type { FastifyInstance, FastifyRequest } from "fastify";
import { PermissionDeniedError } from "../errors/gateway-error.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import type { KeyRing } from "./auth.ts";

export function registerAdminRoutes(app: FastifyInstance, runtime: GatewayRuntime, adminKeys: KeyRing): void {
  const requireAdmin = (request: FastifyRequest): void => {
    if (adminKeys.isEmpty) {
      throw new PermissionDeniedError("The admin API is disabled: set server.admin_keys to enable it.");
    }
    if (!adminKeys.accepts(request.headers.authorization)) {
      throw new PermissionDeniedError(
        "This route needs an admin key: `Authorization: Bearer <one of server.admin_keys>`.",
      );
    }
  };

  /** Clears every cooldown, circuit and budget counter: after fixing a key, or to retry a parked provider now. */
  app.post("/admin/cooldowns/reset", async (request) => {
    requireAdmin(request);
    await runtime.resetLimits();
    request.log.warn("admin: cooldowns, circuits and budget counters reset");
    return { status: "ok", reset: ["cooldowns", "circuits", "budgets"] };
  });

  /** Re-runs model discovery now, ignoring the cache's age. */
  app.post("/admin/models/refresh", async (request) => {
    requireAdmin(request);
    await runtime.reload(runtime.snapshot.config, { isDiscoveryForced: true });
    return { status: "ok", models: runtime.snapshot.catalog.deployments.length };
  });
}
