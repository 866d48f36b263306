// What the gateway's own request hook adds to every Fastify request (decorated in build-server.ts).
import "fastify";

declare module "fastify" {
  interface FastifyRequest {
    /** The name of the client whose key the request carries (`server.api_keys`); null: unnamed, or no key needed. */
    clientName: string | null;
    /**
     * When the request arrived (the runtime's clock), taken by the first hook: the start of the record of a request no
     * pipeline records from its own start (a refused body, a route no door serves).
     */
    arrivedAtMs: number;
  }
}
