"use strict";
// The bundle's stand-in for `node:assert` in the packages that load it only to call `assert(condition, message)`
// on options that hold (undici, Fastify, find-my-way, sonic-boom, thread-stream; bin/build.js): loading the real
// module (its error classes, its diffing and deep-equality code) cost ~5 ms of CPU at every start. A truthy
// condition returns, as the real `assert` does; any other call, and any property (`assert.ok`, `assert.strict`,
// ...), goes to the real module, loaded then. CommonJS, as the packages that require it.
let real;
const load = () => {
  real ??= require("node:assert");
  return real;
};
module.exports = new Proxy(function assert() {}, {
  apply: (_, self, args) => (args.length > 0 && args[0] ? undefined : Reflect.apply(load(), self, args)),
  get: (_, key) => load()[key],
  has: (_, key) => key in load(),
});
