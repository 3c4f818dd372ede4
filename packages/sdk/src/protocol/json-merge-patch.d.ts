// Minimal types for the untyped CommonJS package `json-merge-patch` (only what we call).
declare module "json-merge-patch" {
  const jsonMergePatch: {
    /** RFC 7396 patch turning `before` into `after`, or undefined when they are equal. */
    generate(before: unknown, after: unknown): unknown;
  };
  export default jsonMergePatch;
}
