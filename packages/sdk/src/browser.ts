/**
 * `@continuity/sdk` in a browser (the package's `browser` export condition picks this entry):
 * the same API as in Node, with no Node built-ins. `createContinuityClient` speaks gRPC-web
 * over `fetch` (`createWebTransport`); there is no file queue store.
 *
 * @packageDocumentation
 */

export * from "./core.js";
export { createContinuityClient } from "./client/create-web-client.js";
