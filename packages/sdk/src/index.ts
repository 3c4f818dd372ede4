export * as v1 from "./gen/index.continuity.v1.js";
