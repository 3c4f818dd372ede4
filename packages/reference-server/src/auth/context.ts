/** The scopes an access token can carry. */
export type Scope = "state.read" | "state.write" | "identity.manage";

/** Every scope, in the order the spec lists them. */
export const ALL_SCOPES: readonly Scope[] = ["state.read", "state.write", "identity.manage"];

/**
 * Who is calling, as proven by a verified access token and re-checked against the store.
 * The auth middleware attaches it to `context.auth` for every method that needs a token;
 * services never look at request metadata themselves.
 */
export interface AuthContext {
  /** Server-minted subject id (the `{subject}` segment of resource names). */
  readonly subjectId: string;
  /** Configured platform id the token was issued to. */
  readonly platformId: string;
  /** Device the token is bound to; undefined for an unbound token. */
  readonly deviceId: string | undefined;
  /** Scopes granted at exchange time. */
  readonly scopes: ReadonlySet<Scope>;
  /** The token's `jti`. */
  readonly tokenId: string;
  /** When the token stops working. */
  readonly expiresAt: Date;
}

/** The call-context extension the auth middleware adds. */
export interface AuthCallContextExt {
  readonly auth: AuthContext;
}
