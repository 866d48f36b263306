// Types for the three files of undici that undici-agent.ts imports directly (undici types only its index).
declare module "undici/lib/dispatcher/dispatcher.js" {
  const Dispatcher: { prototype: object };
  export default Dispatcher;
}
declare module "undici/lib/api/index.js" {
  const api: object;
  export default api;
}
declare module "undici/lib/dispatcher/agent.js" {
  import type { Agent } from "undici";

  const UndiciAgent: typeof Agent;
  export default UndiciAgent;
}
