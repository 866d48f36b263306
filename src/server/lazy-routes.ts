// Routes registered at start whose handlers load at their first request. Fastify takes no route once it listens, so
// each route is registered with its method and URL (its 404s, 405s and body limits as before) and a small handler that
// imports the module serving it on first use. Why: a start built and evaluated every door's modules (~40 for the
// Responses and Messages doors alone) though most gateways serve chat only at first (bench/README.md, section 29).
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { InternalError } from "../errors/gateway-error.ts";

export type RouteMethod = "GET" | "POST" | "DELETE";

/** A route as Fastify registers it (and as `request.routeOptions` names it). */
export interface RouteShape {
  readonly method: RouteMethod;
  readonly url: string;
  /** Its own body limit, bytes (Fastify fixes it at registration: it is in the shape, known at start). */
  readonly bodyLimit?: number;
}

/** A route's options that a lazily loaded door may give (the same as its shape's). */
export interface RouteOptions {
  readonly bodyLimit: number;
}

export type RouteHandler = (request: FastifyRequest, reply: FastifyReply) => unknown;

/** What a lazily loaded door's register code needs of Fastify: the route methods it calls (a RouteRecorder's). */
export interface RouteTarget {
  get(url: string, handler: RouteHandler): unknown;
  post(url: string, handler: RouteHandler): unknown;
  post(url: string, options: RouteOptions, handler: RouteHandler): unknown;
  delete(url: string, handler: RouteHandler): unknown;
}

/** Collects a door's handlers by route, for registerLazyRoutes to call. */
export class RouteRecorder implements RouteTarget {
  readonly handlers = new Map<string, RouteHandler>();
  /** The routes as registered, with their options: a test holds them equal to the shapes registered at start. */
  readonly shapes: RouteShape[] = [];

  get(url: string, handler: RouteHandler): void {
    this.#add({ method: "GET", url }, handler);
  }

  post(url: string, optionsOrHandler: RouteOptions | RouteHandler, handler?: RouteHandler): void {
    if (typeof optionsOrHandler === "function") this.#add({ method: "POST", url }, optionsOrHandler);
    else this.#add({ method: "POST", url, bodyLimit: optionsOrHandler.bodyLimit }, handler as RouteHandler);
  }

  delete(url: string, handler: RouteHandler): void {
    this.#add({ method: "DELETE", url }, handler);
  }

  #add(shape: RouteShape, handler: RouteHandler): void {
    const key = routeKey(shape);
    // As Fastify would refuse it: a second handler for a route would silently replace the first.
    if (this.handlers.has(key)) throw new Error(`route ${key} is registered twice`);
    this.handlers.set(key, handler);
    this.shapes.push(shape);
  }
}

function routeKey(shape: RouteShape): string {
  return `${shape.method} ${shape.url}`;
}

/**
 * One load shared by every caller until it settles: concurrent first requests wait for the same import. A load that
 * failed is forgotten, so a later request tries again (a file briefly unreadable must not break the door for good).
 */
export function sharedLoad<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= load().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}

/**
 * Registers `shapes` on `app`; the first request to any of them calls `load` (shared) for the handlers, keyed by
 * route, and every later one calls its handler directly. A load that fails answers 500 through the error handler,
 * which renders it in the route's protocol (Anthropic's shape on the Messages routes), and the next request tries
 * again. `name`: the routes' owner, for that error's text.
 */
export function registerLazyRoutes(
  app: FastifyInstance,
  shapes: readonly RouteShape[],
  load: () => Promise<ReadonlyMap<string, RouteHandler>>,
  name: string,
): void {
  let handlers: ReadonlyMap<string, RouteHandler> | undefined;
  const loaded = sharedLoad(async () => {
    let loadedHandlers: ReadonlyMap<string, RouteHandler>;
    try {
      loadedHandlers = await load();
    } catch (error) {
      throw new InternalError(`The ${name} routes could not be loaded; retry the request.`, { cause: error });
    }
    const missing = shapes.map(routeKey).filter((key) => !loadedHandlers.has(key));
    if (missing.length > 0) {
      throw new InternalError(`The ${name} routes loaded without a handler for ${missing.join(", ")}.`);
    }
    handlers = loadedHandlers;
    return loadedHandlers;
  });
  for (const shape of shapes) {
    const key = routeKey(shape);
    app.route({
      method: shape.method,
      url: shape.url,
      ...(shape.bodyLimit === undefined ? {} : { bodyLimit: shape.bodyLimit }),
      handler: (request, reply) => {
        const handler = handlers?.get(key);
        if (handler !== undefined) return handler(request, reply);
        return loaded().then((map) => (map.get(key) as RouteHandler)(request, reply));
      },
    });
  }
}
