import type { JsonValue } from "@bufbuild/protobuf";
import { canonicalJson, toHex } from "@continuity/sdk/protocol";
import { CompactSign, compactVerify, createLocalJWKSet, decodeProtectedHeader, errors, type CryptoKey, type JSONWebKeySet, type KeyObject } from "jose";

/** The `typ` of a bundle signature's protected header. */
export const BUNDLE_SIGNATURE_TYP = "continuity-bundle+jws";
/** The algorithms a bundle may be signed with. */
export const BUNDLE_SIGNATURE_ALGORITHMS = ["ES256", "EdDSA", "RS256"] as const;
/** One of {@link BUNDLE_SIGNATURE_ALGORITHMS}. */
export type BundleSignatureAlgorithm = (typeof BUNDLE_SIGNATURE_ALGORITHMS)[number];

/** What a bundle signature commits to. */
export interface SignedBundleFacts {
  /** The manifest's proto3 JSON form. */
  readonly manifest: JsonValue;
  readonly recordCount: bigint;
  readonly recordsDigest: Uint8Array;
}

/** The canonical JSON `{"manifest": M, "recordCount": "<n>", "recordsDigest": "<hex>"}` that is signed. */
export function signaturePayload(facts: SignedBundleFacts): Uint8Array {
  return canonicalJson({ manifest: facts.manifest as never, recordCount: facts.recordCount.toString(), recordsDigest: toHex(facts.recordsDigest) });
}

/** Signs a bundle's facts as a compact JWS with the exporter's key. */
export async function signBundle(facts: SignedBundleFacts, key: { readonly privateKey: CryptoKey | KeyObject; readonly kid: string; readonly alg: BundleSignatureAlgorithm }): Promise<string> {
  return new CompactSign(signaturePayload(facts)).setProtectedHeader({ alg: key.alg, typ: BUNDLE_SIGNATURE_TYP, kid: key.kid }).sign(key.privateKey);
}

/** Why a signature was not accepted. */
export class BundleSignatureError extends Error {
  override readonly name = "BundleSignatureError";
}

/**
 * Verifies a bundle signature against a key set the caller trusts: the header (`alg`, `typ`,
 * `kid`), the signature, and that the payload is exactly the one these facts give. Returns
 * the `kid` that signed.
 */
export async function verifyBundleSignature(jws: string, facts: SignedBundleFacts, jwks: JSONWebKeySet): Promise<{ readonly kid: string; readonly alg: string }> {
  let header;
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    throw new BundleSignatureError("the signature is not a compact JWS");
  }
  if (header.typ !== BUNDLE_SIGNATURE_TYP) throw new BundleSignatureError(`the signature's typ is ${JSON.stringify(header.typ)}, not ${BUNDLE_SIGNATURE_TYP}`);
  if (typeof header.kid !== "string" || header.kid === "") throw new BundleSignatureError("the signature's header names no kid");
  if (!(BUNDLE_SIGNATURE_ALGORITHMS as readonly string[]).includes(header.alg ?? "")) throw new BundleSignatureError(`the signature's alg ${header.alg} is not one of ${BUNDLE_SIGNATURE_ALGORITHMS.join(", ")}`);
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, createLocalJWKSet(jwks), { algorithms: [...BUNDLE_SIGNATURE_ALGORITHMS] }));
  } catch (error) {
    if (error instanceof errors.JWKSNoMatchingKey) throw new BundleSignatureError(`no trusted key has kid ${header.kid}`);
    if (error instanceof errors.JWSSignatureVerificationFailed) throw new BundleSignatureError(`the signature does not verify with key ${header.kid}`);
    throw new BundleSignatureError(`the signature cannot be verified: ${(error as Error).message}`);
  }
  if (Buffer.compare(Buffer.from(payload), Buffer.from(signaturePayload(facts))) !== 0) {
    throw new BundleSignatureError("the signature is valid but signs another manifest, record count or records digest");
  }
  return { kid: header.kid, alg: header.alg! };
}
