// Preloaded into a gateway process by a test (`--import`): once the gateway is up (serve's SIGTERM handler is
// installed once it listens), throws an exception nobody catches, whose message and cause quote the configured key
// (not shaped like one: only the configured secrets' redaction catches it), as code handling an upstream's error
// text might.
const timer = setInterval(() => {
  if (process.listenerCount("SIGTERM") === 0) return;
  clearInterval(timer);
  setTimeout(() => {
    throw new Error("injected by the test: the upstream said Incorrect API key plainKEYuncaught0123", {
      cause: new Error('upstream body {"error":"bad key plainKEYuncaught0123"}'),
    });
  }, 0);
}, 50);
