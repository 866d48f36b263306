// undici's Agent without the rest of undici. `import { Agent } from "undici"` evaluates undici's whole index:
// fetch, WebSocket, EventSource, the mock and cache layers, and Node's own bundled undici besides, ~80 ms of CPU
// and ~10 MB at every start, for one class. This loads the class and the request API methods that undici's index
// mixes into every dispatcher (`Object.assign(Dispatcher.prototype, api)`), and nothing else. The objects are
// undici's own (same module cache); undici-agent.test.ts checks that they are, and that the API methods are there.
import { createRequire } from "node:module";
import type { Agent as UndiciAgent } from "undici";

const require = createRequire(import.meta.url);
const Dispatcher = require("undici/lib/dispatcher/dispatcher") as { prototype: object };
const api = require("undici/lib/api") as object;
// What undici's index does on load; idempotent (the same functions), so a later `import "undici"` changes nothing.
Object.assign(Dispatcher.prototype, api);

export const Agent = require("undici/lib/dispatcher/agent") as typeof UndiciAgent;
