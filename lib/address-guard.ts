import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Addresses a server-side request (a webhook delivery) must not reach unless the operator allows
 * it: loopback, private, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
 * unspecified, multicast and reserved ranges, in IPv4 and IPv6 (IPv4-mapped IPv6 included).
 */
const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96], ['2001:db8::', 32]] as const) blocked.addSubnet(net, bits, 'ipv6');

/** Whether an IP address (v4 or v6) is one a webhook may not be delivered to. */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const v = isIP(bare);
  if (v === 4) return blocked.check(bare, 'ipv4');
  if (v === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
    if (mapped) return blocked.check(mapped[1]!, 'ipv4');
    return blocked.check(bare, 'ipv6');
  }
  return false;
}

/** A host name that names the machine itself, whatever it resolves to. */
export function isLocalHostName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.local') || h.endsWith('.internal');
}

export class PrivateAddressError extends Error {
  constructor(public readonly host: string, public readonly address: string) {
    super(`${host} resolves to ${address}, a private or local address: deliveries there are refused on this server`);
  }
}

/**
 * Resolves a URL's host and refuses it when any of its addresses is private (checked at delivery
 * time too, so a name that later points inside the network is caught).
 */
export async function assertPublicHost(url: string, resolve: (host: string) => Promise<{ address: string }[]> = (h) => lookup(h, { all: true })): Promise<void> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (isLocalHostName(host)) throw new PrivateAddressError(host, host);
  const addresses = isIP(host) ? [{ address: host }] : await resolve(host);
  for (const a of addresses) if (isPrivateAddress(a.address)) throw new PrivateAddressError(host, a.address);
}
