/**
 * `@continuity/sdk/platform`: what a platform's backend needs for Continuity, apart from the
 * app's SDK — signing the assertions its apps exchange for access tokens. It holds the
 * platform's private key, so it belongs on the platform's servers, never in an app bundle.
 *
 * @packageDocumentation
 */

export { createAssertionSigner } from "./assertion-signer.js";
export type { AssertionAlgorithm, AssertionSigner, AssertionSignerOptions } from "./assertion-signer.js";
