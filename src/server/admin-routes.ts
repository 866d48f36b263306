// Operator routes, guarded by `server.admin_keys` (separate from client keys: a client must not be able to
// wipe the gateway's knowledge of provider limits).
import type { FastifyInstance, FastifyRequest } from "fastify";
import { InvalidConfigError, PermissionDeniedError, ServiceUnavailableError } from "../errors/gateway-error.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import type { KeyRing } from "./auth.ts";

export function registerAdminRoutes(app: FastifyInstance, runtime: GatewayRuntime, adminKeyRing: () => KeyRing): void {
  const requireAdmin = (request: FastifyRequest): void => {
    const adminKeys = adminKeyRing();
    if (adminKeys.isEmpty) {
      throw new PermissionDeniedError("The admin API is disabled: set server.admin_keys to enable it.");
    }
    if (!adminKeys.accepts(request.headers.authorization)) {
      throw new PermissionDeniedError(
        "This route needs an admin key: `Authorization: Bearer <one of server.admin_keys>`.",
      );
    }
  };

  /**
   * Clears every cooldown, circuit, budget counter and refused feature: after fixing a key, or to retry a parked
   * provider (or one that refused tools before its host was set up for them) now.
   */
  app.post("/admin/cooldowns/reset", async (request) => {
    requireAdmin(request);
    try {
      await runtime.resetLimits();
    } catch (error) {
      // A Redis Cluster master not reached: the rest was reset; the error names that master (redis-shared-reset.ts).
      if (error instanceof ServiceUnavailableError) throw error;
      // Redis unreachable: this process was reset, the fleet's shared counts were not. Said as such rather than as
      // an opaque 500, without the store's own words (a connection error may name the Redis URL).
      throw new ServiceUnavailableError(
        "The shared state (Redis) is unreachable: only this gateway process's cooldowns and budgets were reset; retry to reset the fleet's.",
        { retryAfterMs: 1_000 },
      );
    }
    request.log.warn("admin: cooldowns, circuits, budget counters and refused features reset");
    return { status: "ok", reset: ["cooldowns", "circuits", "budgets", "refused_features"] };
  });

  app.post("/admin/cache/clear", async (request) => {
    requireAdmin(request);
    let dropped: number;
    try {
      dropped = await runtime.answers.clear();
    } catch {
      // Redis unreachable: nothing was dropped; said without the store's own words (they may name its URL).
      throw new ServiceUnavailableError(
        "The shared state (Redis) is unreachable: the answer cache was not cleared; retry.",
        {
          retryAfterMs: 1_000,
        },
      );
    }
    request.log.warn({ dropped }, "admin: answer cache cleared");
    return { status: "ok", dropped };
  });

  /**
   * Loads and validates the config files (and .env) again: 200 with the new config's hash when it was swapped
   * in, 400 `config_invalid` listing every problem when not (the previous config keeps serving).
   */
  app.post("/admin/reload", async (request) => {
    requireAdmin(request);
    const result = await runtime.reloadFromSource("POST /admin/reload");
    if (!result.isApplied) {
      throw new InvalidConfigError(
        `The config was not reloaded (${result.problems.length} problem${result.problems.length === 1 ? "" : "s"}); the previous config keeps serving.`,
        { problems: result.problems },
      );
    }
    return { status: "ok", config: { hash: result.hash, loaded_at: new Date(result.loadedAtMs).toISOString() } };
  });

  /** Re-runs model discovery now, ignoring the cache's age. */
  app.post("/admin/models/refresh", async (request) => {
    requireAdmin(request);
    await runtime.rebuild({ isDiscoveryForced: true });
    return { status: "ok", models: runtime.snapshot.catalog.deployments.length };
  });
}
