// undici's Agent without the rest of undici. `import { Agent } from "undici"` evaluates undici's whole index:
// fetch, WebSocket, EventSource, the mock and cache layers, and Node's own bundled undici besides, ~80 ms of CPU
// and ~10 MB at every start, for one class. This loads the class and the request API methods that undici's index
// mixes into every dispatcher (`Object.assign(Dispatcher.prototype, api)`), and nothing else. The objects are
// undici's own (same module cache); undici-agent.test.ts checks that they are, and that the API methods are there.
// Static imports of undici's files (typed in undici-files.d.ts), so that the bundle (bin/build.js) holds them too
// and can give them a lazy `node:http2` (undici reads only its constants at load).

import type { Dispatcher } from "undici";
import api from "undici/lib/api/index.js";
import UndiciAgent from "undici/lib/dispatcher/agent.js";
import UndiciDispatcher from "undici/lib/dispatcher/dispatcher.js";

// What undici's index does on load; idempotent (the same functions), so a later `import "undici"` changes nothing.
Object.assign(UndiciDispatcher.prototype, api);

export const Agent = UndiciAgent;

/** The gateway's own connections to the providers (when none is given to the runtime). */
export function createUpstreamAgent(): Dispatcher {
  // keep-alive to every provider. Connections are not capped here: `providers[].max_in_flight` bounds them per
  // provider before a request is sent. A pool cap would make requests wait inside undici, where the wait counts
  // against the provider's timeout_ms (several providers, one per key, may share one origin).
  return new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
}
