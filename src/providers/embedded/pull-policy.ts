import dns from 'node:dns';
import net from 'node:net';
import { BackendError } from '../types.js';

/**
 * Which addresses a pull may connect to. A pull fetches whatever URL the caller names and reports its
 * size and digest, so without limits it reads services that only this machine can reach: its own
 * loopback ports, the cloud's metadata endpoint (169.254.169.254), link-local devices. Those are
 * refused unless PULL_ALLOW_HOSTS names them. Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7)
 * stay open by default: a self-hosted gateway commonly pulls from a model mirror on its own network.
 *
 * The address checked is the one connected to: the check runs inside the socket's DNS lookup (see
 * `lookupFor`), so a name cannot resolve to a public address for the check and to loopback for the
 * connection. Literal IP hosts are never looked up, so they are checked before connecting.
 */

/** Ranges no pull may reach unless allowed, with the word used in the refusal. */
const REFUSED: [string, number, 'ipv4' | 'ipv6', string][] = [
  ['0.0.0.0', 8, 'ipv4', 'unspecified'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['169.254.0.0', 16, 'ipv4', 'link-local (cloud metadata)'],
  // Alibaba Cloud's metadata service lives outside link-local.
  ['100.100.100.200', 32, 'ipv4', 'cloud metadata'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved or broadcast'],
  // `::`, `::1` and the deprecated IPv4-compatible forms (`::127.0.0.1`).
  ['::', 96, 'ipv6', 'unspecified or loopback'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['ff00::', 8, 'ipv6', 'multicast'],
  // AWS's IPv6 metadata endpoint, inside the otherwise open unique-local range.
  ['fd00:ec2::254', 128, 'ipv6', 'cloud metadata'],
];

const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

function family(address: string): 'ipv4' | 'ipv6' | undefined {
  const version = net.isIP(address);
  return version === 4 ? 'ipv4' : version === 6 ? 'ipv6' : undefined;
}

/** A URL's hostname as an address or a name: brackets, a trailing dot and case do not matter. */
function bareHost(hostname: string): string {
  return hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
}

/** Names that mean this machine without any DNS server being asked. */
function isLocalName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

export class PullPolicy {
  private readonly allowedNames = new Set<string>();
  private readonly allowedAddresses = new net.BlockList();
  private readonly refused: { list: net.BlockList; why: string }[];

  /** `allowHosts`: host names (matched exactly) and IPv4/IPv6 addresses or CIDR ranges. */
  constructor(allowHosts: string[] = []) {
    for (const raw of allowHosts) {
      const entry = raw.trim();
      const [address = '', prefix] = entry.split('/');
      const bare = bareHost(address);
      const kind = family(bare);
      if (kind) {
        const bits = prefix === undefined ? (kind === 'ipv4' ? 32 : 128) : Number(prefix);
        if (!/^\d+$/.test(prefix ?? String(bits)) || bits > (kind === 'ipv4' ? 32 : 128)) {
          throw new Error(`PULL_ALLOW_HOSTS: '${entry}' is not a valid CIDR range`);
        }
        this.allowedAddresses.addSubnet(bare, bits, kind);
      } else if (prefix === undefined && HOST_NAME.test(bare)) {
        this.allowedNames.add(bare);
      } else {
        throw new Error(`PULL_ALLOW_HOSTS: '${entry}' is neither a host name nor an IP address or CIDR range`);
      }
    }
    this.refused = REFUSED.map(([address, bits, kind, why]) => {
      const list = new net.BlockList();
      list.addSubnet(address, bits, kind);
      return { list, why };
    });
  }

  /** Why a pull may not connect to `address`, or undefined when it may. */
  refusal(address: string): string | undefined {
    const kind = family(address);
    if (!kind) return 'not an IP address';
    if (this.allowedAddresses.check(address, kind)) return undefined;
    // BlockList matches IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) against IPv4 ranges too.
    return this.refused.find((range) => range.list.check(address, kind))?.why;
  }

  private refusedError(host: string, address: string, why: string): BackendError {
    const shown = host === address ? address : `${host} (${address})`;
    return new BackendError(`refused to pull from ${shown}: a ${why} address; PULL_ALLOW_HOSTS can allow it`, 400);
  }

  /**
   * Checks what can be known without DNS: a literal IP (in any spelling the URL parser normalises,
   * `2130706433` and `0x7f.1` included) and `localhost` names. Throws a 400 for a refused one.
   */
  checkLiteralHost(hostname: string): void {
    const host = bareHost(hostname);
    if (this.allowedNames.has(host)) return;
    const address = family(host) ? host : isLocalName(host) ? '127.0.0.1' : undefined;
    if (address === undefined) return;
    const why = this.refusal(address);
    if (why) throw this.refusedError(host, address, why);
  }

  /**
   * The DNS lookup a connection to `hostname` uses: the system's, with every address checked. A name
   * with any refused address is refused as a whole, so one answer cannot mix a public address in.
   */
  lookupFor(hostname: string): net.LookupFunction {
    const host = bareHost(hostname);
    if (this.allowedNames.has(host)) return dns.lookup as unknown as net.LookupFunction;
    return (name, options, callback) => {
      dns.lookup(name, { ...options, all: true }, (error, addresses) => {
        if (error) return callback(error, '', 0);
        for (const { address } of addresses) {
          const why = this.refusal(address);
          if (why) return callback(this.refusedError(host, address, why), '', 0);
        }
        if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, addresses);
        const first = addresses[0];
        if (!first) return callback(Object.assign(new Error(`no address for ${name}`), { code: 'ENOTFOUND' }), '', 0);
        callback(null, first.address, first.family);
      });
    };
  }
}

/** A URL as it may be shown or logged: no credentials, query or fragment (tokens travel there). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return url.replace(/[?#].*$/s, '');
  }
}
