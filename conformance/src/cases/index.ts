import type { ConformanceCase } from "../harness/define-case.js";
import { ACCESS_CASES } from "./access.js";
import { APPEND_CASES } from "./appends.js";
import { AUTH_CASES } from "./auth.js";
import { BOUNDARY_CASES } from "./boundaries.js";
import { CHECKPOINT_CASES } from "./checkpoints.js";
import { CHECKPOINT_EDGE_CASES } from "./checkpoint-edges.js";
import { COMPACT_DELIVERY_CASES } from "./compact-delivery.js";
import { CONNECTION_CASES } from "./connections.js";
import { CONSENT_EDGE_CASES } from "./consent-edges.js";
import { EDGE_CASES } from "./edges.js";
import { HISTORY_CASES } from "./history.js";
import { ID_TOKEN_CLAIM_CASES } from "./id-token-claims.js";
import { IDENTITY_CASES } from "./identity.js";
import { LIVE_FEED_CASES } from "./live-feed.js";
import { MESSAGE_CASES } from "./messages.js";
import { NAME_CASES } from "./names.js";
import { PATCH_WORK_CASES } from "./patch-work.js";
import { OIDC_CASES } from "./oidc.js";
import { OIDC_PROVIDER_DOCUMENT_CASES } from "./oidc-provider-documents.js";
import { PLATFORM_CASES } from "./platforms.js";
import { PORTABILITY_CASES } from "./portability.js";
import { PORTABILITY_EDGE_CASES } from "./portability-edges.js";
import { PORTABILITY_SWITCH_CASES } from "./portability-switch.js";
import { PORTABILITY_EXPORT_CASES } from "./portability-export.js";
import { PRECISION_CASES } from "./precision.js";
import { RESOURCE_CASES } from "./resources.js";
import { ROBUSTNESS_CASES } from "./robustness.js";
import { SNAPSHOT_CASES } from "./snapshots.js";
import { STORE_EDGE_CASES } from "./store-edges.js";
import { STREAM_CASES } from "./streams.js";
import { SUBSCRIPTION_CASES } from "./subscriptions.js";
import { SUBSCRIPTION_EDGE_CASES } from "./subscription-edges.js";
import { VECTOR_CASES } from "./vectors.js";
import { WHOLE_STATE_CASES } from "./whole-state.js";

/** Every case of the suite, in report order. Ids are stable: known-failure files name them. */
export const ALL_CASES: readonly ConformanceCase[] = [
  ...AUTH_CASES,
  ...OIDC_CASES,
  ...OIDC_PROVIDER_DOCUMENT_CASES,
  ...ACCESS_CASES,
  ...RESOURCE_CASES,
  ...STREAM_CASES,
  ...SNAPSHOT_CASES,
  ...APPEND_CASES,
  ...PATCH_WORK_CASES,
  ...HISTORY_CASES,
  ...BOUNDARY_CASES,
  ...VECTOR_CASES,
  ...SUBSCRIPTION_CASES,
  ...LIVE_FEED_CASES,
  ...SUBSCRIPTION_EDGE_CASES,
  ...COMPACT_DELIVERY_CASES,
  ...CHECKPOINT_CASES,
  ...CHECKPOINT_EDGE_CASES,
  ...IDENTITY_CASES,
  ...CONSENT_EDGE_CASES,
  ...PLATFORM_CASES,
  ...PRECISION_CASES,
  ...ROBUSTNESS_CASES,
  ...CONNECTION_CASES,
  ...PORTABILITY_CASES,
  ...PORTABILITY_EDGE_CASES,
  ...PORTABILITY_SWITCH_CASES,
  ...PORTABILITY_EXPORT_CASES,
  ...NAME_CASES,
  ...EDGE_CASES,
  ...ID_TOKEN_CLAIM_CASES,
  ...MESSAGE_CASES,
  ...STORE_EDGE_CASES,
  ...WHOLE_STATE_CASES,
];

const seen = new Set<string>();
for (const conformanceCase of ALL_CASES) {
  if (seen.has(conformanceCase.id)) throw new Error(`duplicate case id ${conformanceCase.id}`);
  seen.add(conformanceCase.id);
}
