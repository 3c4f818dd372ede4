import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/**
 * Which addresses a migration's target may dial as its source (PORT-041).
 *
 * `CreateMigration` makes this server open a connection to an address a caller names, and
 * report how the connection went: without a policy any signed-in person could make it probe
 * the operator's own network (the cloud's metadata service, a database port, an admin page).
 * So a source is dialed only at a public unicast address, or at one inside a range the
 * operator listed (`--migration-sources`), and a host name is dialed at the address that was
 * checked, never looked up again, so a name that resolves differently a moment later (DNS
 * rebinding) cannot slip past. Address classification is ipaddr.js's table of special-purpose
 * ranges (RFC 6890 and successors), with IPv4-mapped IPv6 addresses judged as the IPv4 address
 * they carry.
 */
export interface SourcePolicy {
  /** Whether an address (IPv4 or IPv6 text, as `dns.lookup` gives it) may be dialed. */
  allows(address: string): boolean;
  /** The ranges the operator added, as given, for logs. */
  readonly extraRanges: readonly string[];
}

/** A parsed `host:port`, with the host as written (brackets removed). */
export interface SourceAddress {
  readonly host: string;
  readonly port: number;
}

/** Where a checked source is dialed: an address literal, with the name to present for TLS and authority. */
export interface PinnedSource {
  /** `ip:port` or `[ip6]:port`. */
  readonly dial: string;
  /** The host as named (for the TLS server name and `:authority`); equal to the address for literals. */
  readonly host: string;
  readonly port: number;
}

/** How a source address was judged. */
export type SourceCheck =
  | { readonly kind: "allowed"; readonly pinned: PinnedSource }
  /** Resolved, and no address it resolves to may be dialed. */
  | { readonly kind: "refused"; readonly message: string }
  /** Could not be resolved (yet): the source cannot be reached, which is the migration's failure (PORT-035). */
  | { readonly kind: "unresolved"; readonly message: string };

/** Longest a source's name lookup may take before the source counts as unreachable. */
const LOOKUP_TIMEOUT_MS = 5_000;

/**
 * The policy for a list of extra ranges (`10.0.0.0/8`, `::1`, `127.0.0.1/32`): those, plus
 * every public unicast address. Throws on an entry that is not an address or CIDR range.
 */
export function createSourcePolicy(extra: readonly string[] = []): SourcePolicy {
  const ranges = extra.map(parseRange);
  return {
    // Stryker disable next-line ArrayDeclaration: the operator's ranges as given are for logs only
    extraRanges: [...extra],
    allows(text) {
      if (!ipaddr.isValid(text)) return false;
      // process() turns ::ffff:a.b.c.d into a.b.c.d, so a mapped address is judged as IPv4.
      const address = ipaddr.process(text);
      if (address.range() === "unicast") return true;
      return ranges.some(([network, bits]) => network.kind() === address.kind() && address.match(network, bits));
    },
  };
}

/** One `--migration-sources` entry as a range; a bare address is a range of one. */
export function parseRange(entry: string): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  const text = entry.trim();
  if (ipaddr.isValidCIDR(text)) {
    const [network, bits] = ipaddr.parseCIDR(text);
    const processed = ipaddr.process(network.toString());
    // A mapped IPv4 range (::ffff:10.0.0.0/104) is the IPv4 range it maps.
    return processed.kind() === network.kind() ? [network, bits] : [processed, bits - 96];
  }
  if (ipaddr.isValid(text) && isIP(text) !== 0) {
    const address = ipaddr.process(text);
    return [address, address.kind() === "ipv4" ? 32 : 128];
  }
  // Stryker disable next-line StringLiteral: a start-up error's wording, for the operator (config.ts's check reports a bad entry with its own message); no client sees it
  throw new TypeError(`${JSON.stringify(entry)} is not an IP address or CIDR range`);
}

/** Splits `host:port` or `[v6]:port` (already validated as such). */
export function parseSourceAddress(source: string): SourceAddress {
  const at = source.lastIndexOf(":");
  const host = source.slice(0, at);
  return { host: host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host, port: Number(source.slice(at + 1)) };
}

/**
 * Resolves a source's host (unless it is an address literal) and picks the first address the
 * policy allows, in the resolver's order. Every address is looked at, so a name that
 * resolves to a public and a private address is dialed at the public one.
 */
export async function checkSource(source: SourceAddress, policy: SourcePolicy): Promise<SourceCheck> {
  let addresses: string[];
  if (isIP(source.host) !== 0) {
    addresses = [source.host];
  } else {
    try {
      addresses = await withTimeout(lookup(source.host, { all: true, verbatim: true }), LOOKUP_TIMEOUT_MS).then((found) => found.map((a) => a.address));
    } catch (error) {
      return { kind: "unresolved", message: `the source's host ${source.host} could not be resolved (${(error as Error).message})` };
    }
  }
  const allowed = addresses.find((address) => policy.allows(address));
  if (allowed === undefined) {
    // The addresses a name resolved to are not repeated: they may be the operator's own.
    const what = isIP(source.host) !== 0 ? `${source.host} is not an address` : `the host ${source.host} resolves to no address`;
    return { kind: "refused", message: `${what} this server dials for migrations: public addresses and those its operator allowed (PORT-041)` };
  }
  return { kind: "allowed", pinned: { dial: isIP(allowed) === 6 ? `[${allowed}]:${source.port}` : `${allowed}:${source.port}`, host: source.host, port: source.port } };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
