/**
 * The two documents the server fetches from a platform's OpenID provider: its discovery
 * document (OpenID Connect Discovery 1.0, §4) and its JWKS, each read with a cap on its size
 * and a deadline for the whole answer, body included (TOKEN-026, TOKEN-027, TOKEN-029).
 *
 * Written here rather than taken from jose's `createRemoteJWKSet` because that one reads the
 * whole body whatever its size, keeps its copy in the process (the copy here lives in the
 * store, shared by replicas, TOKEN-025) and does no discovery.
 */

/** The most a provider document may weigh; reading stops, and the fetch is aborted, past it. */
export const PROVIDER_DOCUMENT_MAX_BYTES = 1_048_576;
/** The most keys a provider's JWKS may hold; providers publish a handful. */
export const JWKS_MAX_KEYS = 100;

/** A provider document that could not be had; the message says why, for the logs. */
export class ProviderDocumentError extends Error {
  override readonly name = "ProviderDocumentError";
}

/** A loopback host, where a test or a sidecar may serve a provider's documents over plain http. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** `https`, or `http` on a loopback host: the URLs the server fetches provider documents from. */
export function isProviderUrl(url: URL): boolean {
  return url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.hostname));
}

/**
 * GETs `url` and parses its body as JSON, all before `deadline` (epoch ms): the timer aborts
 * the request whether it waits for headers or for the rest of a body that trickles in. A body
 * that declares or reaches more than {@link PROVIDER_DOCUMENT_MAX_BYTES} is refused when the
 * cap is passed, not after it was read. Redirects are not followed: a provider document is
 * served where it is named, and a redirect could lead off https.
 */
export async function fetchProviderJson(url: URL, deadline: number, what: string): Promise<{ readonly text: string; readonly json: unknown }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), Math.max(0, deadline - Date.now()));
  try {
    const response = await fetch(url, { signal: controller.signal, redirect: "manual", headers: { accept: "application/json" } });
    if (response.status !== 200) throw new ProviderDocumentError(`${what}: expected 200 OK, got ${response.status}`);
    const declared = Number(response.headers.get("content-length") ?? "0");
    if (declared > PROVIDER_DOCUMENT_MAX_BYTES) throw new ProviderDocumentError(`${what}: declares ${declared} bytes, more than ${PROVIDER_DOCUMENT_MAX_BYTES}`);
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (response.body !== null) {
      for await (const chunk of response.body) {
        size += chunk.byteLength;
        if (size > PROVIDER_DOCUMENT_MAX_BYTES) throw new ProviderDocumentError(`${what}: more than ${PROVIDER_DOCUMENT_MAX_BYTES} bytes`);
        chunks.push(chunk);
      }
    }
    let text: string;
    let json: unknown;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks, size));
      json = JSON.parse(text);
    } catch {
      throw new ProviderDocumentError(`${what}: not UTF-8 JSON`);
    }
    return { text, json };
  } catch (error) {
    if (controller.signal.aborted && !(error instanceof ProviderDocumentError)) {
      throw new ProviderDocumentError(`${what}: no complete answer in time`, { cause: error });
    }
    if (error instanceof ProviderDocumentError) throw error;
    throw new ProviderDocumentError(`${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    clearTimeout(timer);
    // Releases the connection of a body left unread (an error status, a body over the cap).
    controller.abort();
  }
}

/** A JWKS document's key count, checked before any key is imported. */
export function checkKeyCount(json: unknown, what: string): void {
  const keys = typeof json === "object" && json !== null ? (json as { keys?: unknown }).keys : undefined;
  if (Array.isArray(keys) && keys.length > JWKS_MAX_KEYS) {
    throw new ProviderDocumentError(`${what}: ${keys.length} keys, more than ${JWKS_MAX_KEYS}`);
  }
}

/**
 * The `jwks_uri` of the provider whose issuer is `issuer`, from its discovery document at
 * `{issuer}/.well-known/openid-configuration` (a trailing `/` of the issuer is not doubled).
 * The document must name exactly that issuer (Discovery §4.3), else anyone able to serve a
 * document there could name keys of another provider; its `jwks_uri` must be https, or http
 * on a loopback host when the issuer itself is (a test provider).
 */
export async function discoverJwksUri(issuer: string, deadline: number): Promise<URL> {
  const where = new URL(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  const { json } = await fetchProviderJson(where, deadline, "discovery document");
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ProviderDocumentError("discovery document: not a JSON object");
  const document = json as { issuer?: unknown; jwks_uri?: unknown };
  if (document.issuer !== issuer) {
    throw new ProviderDocumentError(`discovery document: issuer ${JSON.stringify(String(document.issuer).slice(0, 80))} is not the configured ${JSON.stringify(issuer)}`);
  }
  if (typeof document.jwks_uri !== "string" || !URL.canParse(document.jwks_uri)) throw new ProviderDocumentError("discovery document: no jwks_uri URL");
  const jwksUri = new URL(document.jwks_uri);
  const plainAllowed = new URL(issuer).protocol === "http:";
  if (!(jwksUri.protocol === "https:" || (plainAllowed && isProviderUrl(jwksUri)))) {
    throw new ProviderDocumentError(`discovery document: jwks_uri ${JSON.stringify(jwksUri.href.slice(0, 80))} is not https`);
  }
  return jwksUri;
}
