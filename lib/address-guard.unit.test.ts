import { describe, expect, it } from 'vitest';
import { assertPublicHost, isLocalHostName, isPrivateAddress, PrivateAddressError } from './address-guard.js';

describe('webhook address guard', () => {
  it('refuses loopback, private, link-local, CGNAT, unspecified and mapped addresses', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '[::1]']) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
  });

  it('lets public addresses through', () => {
    for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) expect(isPrivateAddress(a), a).toBe(false);
  });

  it('treats localhost names as local', () => {
    expect(isLocalHostName('localhost')).toBe(true);
    expect(isLocalHostName('api.localhost')).toBe(true);
    expect(isLocalHostName('metadata.google.internal')).toBe(true);
    expect(isLocalHostName('hooks.example.com')).toBe(false);
  });

  it('refuses a name that resolves inside the network, and accepts one that does not', async () => {
    const dns = (map: Record<string, string[]>) => async (h: string) => (map[h] ?? []).map((address) => ({ address }));
    await expect(assertPublicHost('https://rebind.example.com/x', dns({ 'rebind.example.com': ['93.184.216.34', '10.0.0.7'] }))).rejects.toBeInstanceOf(PrivateAddressError);
    await expect(assertPublicHost('https://hooks.example.com/x', dns({ 'hooks.example.com': ['93.184.216.34'] }))).resolves.toBeUndefined();
    await expect(assertPublicHost('http://127.0.0.1:8080/x', dns({}))).rejects.toThrow(/127\.0\.0\.1/);
    await expect(assertPublicHost('http://[::1]:8080/x', dns({}))).rejects.toBeInstanceOf(PrivateAddressError);
  });
});
