// Preloaded by `pnpm bench` into the servers whose idle memory it measures (with
// --expose-gc): SIGUSR2 runs a full garbage collection, so that RSS can be read both as it is
// and after GC, as issue 13 reports it. Bench tooling only; the server itself has no such hook.
// Plain JavaScript: it is imported before tsx is.

const gc = globalThis.gc;
if (typeof gc === "function") process.on("SIGUSR2", () => gc());
