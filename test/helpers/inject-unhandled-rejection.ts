// Preloaded into a gateway process by a test (`--import`): once the gateway is up (serve's SIGTERM handler is
// installed once it listens), rejects a promise nobody handles, with an upstream-echoed key in its message, as a
// library's internal command might.
const timer = setInterval(() => {
  if (process.listenerCount("SIGTERM") === 0) return;
  clearInterval(timer);
  void Promise.reject(new Error("injected by the test: the upstream said Incorrect API key sk-secret-alpha-123"));
}, 50);
