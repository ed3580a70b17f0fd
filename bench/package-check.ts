import { randomBytes } from 'node:crypto';
import { jsapiCatalog } from '../lib/jsapi-catalog.js';
import { jsapiScanTargets } from '../lib/jsapi-check.js';
import { decideJsapis, scanPackageFiles, type CatalogRule, type FeatureRef } from '../lib/jsapi-scan.js';
import { checkPackage } from '../lib/package-check.js';
import { buildPackage, type PackageFiles } from '../test/fixtures/packages.js';
import { fmt, percentile } from './harness.js';

/**
 * Package check time with the JSAPI scan, for a ~20 MB package of 500 script files calling 200
 * distinct JSAPIs: `checkPackage` alone (unzip, limits, CRC, manifest: the baseline every upload
 * pays) against `checkPackage` keeping the scripts + the scan + the decision (catalog and grants
 * in memory: in the API they are two indexed queries, measured by the integration tests, not
 * here). Pure CPU, in this process: no database, no Temporal.
 */
const files = Number(process.env.BENCH_FILES ?? 500);
const targetBytes = Number(process.env.BENCH_PACKAGE_MB ?? 20) * 1024 * 1024;
/** Uncompressed script bytes (the rest of the 20 MB zip is images, as in real packages). */
const scriptTarget = Number(process.env.BENCH_SCRIPT_MB ?? 20) * 1024 * 1024;
const distinct = Number(process.env.BENCH_APIS ?? 200);
const rounds = Number(process.env.BENCH_ROUNDS ?? 7);

// 200 API names: the catalog's, then plausible extra ones (all in the bench's catalog).
const names = jsapiCatalog.map((e) => e.name);
for (let i = 0; names.length < distinct; i++) names.push(`getVendorThing${i}`);
const apis = names.slice(0, distinct);
const catalog = new Map<string, CatalogRule>(apis.map((name, i) => [name, { permissionLevel: i % 4 === 0 ? 'needs_feature' : 'open', status: 'active' }]));
const granted = new Map<string, FeatureRef[]>(apis.filter((_, i) => i % 4 === 0).map((name) => [name, [{ featureId: 'fea_bench', name: 'Bench' }]]));

/** One page script: realistic code calling 20 of the APIs (comments, strings, templates, a regex) + incompressible padding. */
function script(i: number, padBytes: number): string {
  const ns = i % 2 === 0 ? 'my' : 'wx';
  const calls: string[] = [];
  for (let k = 0; k < 20; k++) {
    const api = apis[(i * 7 + k * 13) % apis.length];
    calls.push(
      `  // calls ${ns}.${api}() when the user taps; see ${ns}.oldApi() for the legacy path
  on${k}(e) {
    const url = \`/pages/p${i}/detail?id=\${e.detail.id}&from=${ns}.${api}()\`;
    if (/["']/.test(e.detail.title || '')) this.setData({ title: e.detail.title.replace(/"/g, '&quot;') });
    ${ns}.${api}({ url, success: (res) => this.setData({ res${k}: res, at: Date.now() / 1000 }), fail: () => ${ns}.showToast({ title: 'failed: ' + url }) });
  },`,
    );
  }
  const code = `/* page ${i}: generated for the package-check bench */\nimport { request } from '../../utils/request';\nPage({\n  data: { list: [], loading: false },\n${calls.join('\n')}\n});\n`;
  // Padding: data tables as string literals (base64 of random bytes: the zip cannot shrink them much).
  const chunks: string[] = [];
  let size = code.length;
  for (let n = 0; size < padBytes; n++) {
    const line = `export const blob${n} = "${randomBytes(3000).toString('base64')}";\n`;
    chunks.push(line);
    size += line.length;
  }
  return code + chunks.join('');
}

const pages = Array.from({ length: files }, (_, i) => `pages/p${i}/p${i}`);
const perFile = Math.floor(scriptTarget / files);
const pkg: PackageFiles = {
  'app.json': JSON.stringify({ pages, jsapis: [apis[1], apis[2]], window: { defaultTitle: 'Bench' } }),
  'app.js': 'App({ onLaunch() { my.getSystemInfo({ success: () => {} }); } });\n',
};
for (let i = 0; i < files; i++) {
  pkg[`${pages[i]}.js`] = script(i, perFile);
  pkg[`${pages[i]}.axml`] = `<view class="page">page ${i}</view>\n`;
}
// Images (stored: they do not compress) up to the package size.
const scriptsOnly = buildPackage(pkg).length;
for (let i = 0, left = targetBytes - scriptsOnly; left > 0; i++, left -= 256 * 1024) pkg[`images/banner-${i}.png`] = new Uint8Array(randomBytes(Math.min(left, 256 * 1024)));
const zip = buildPackage(pkg);
const scriptBytes = Object.entries(pkg).filter(([p]) => p.endsWith('.js')).reduce((n, [, c]) => n + Buffer.byteLength(c as string), 0);
const limits = { maxEntries: 5000, maxEntryBytes: 8 * 1024 * 1024, maxTotalBytes: 64 * 1024 * 1024 };

console.log(`package: ${(zip.length / 1024 / 1024).toFixed(1)} MB zip, ${files} script files (${(scriptBytes / 1024 / 1024).toFixed(1)} MB of script, ${(scriptsOnly / 1024 / 1024).toFixed(1)} MB zipped) + images, ${distinct} distinct JSAPIs`);

/** CPU time of this process (all threads: zlib runs in the thread pool), in ms: robust when other processes load the machine. */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function baseline() {
  const t = performance.now();
  const c = cpuMs();
  await checkPackage(zip, { version: '1.0.0', limits });
  cpu.base.push(cpuMs() - c);
  return performance.now() - t;
}
/** What the upload route and the pipeline do: one read keeping the scripts, the scan, the decision. */
async function withScan() {
  const t = performance.now();
  const c = cpuMs();
  const summary = await checkPackage(zip, { version: '1.0.0', limits, collect: jsapiScanTargets });
  const read = performance.now();
  const c1 = cpuMs();
  const uses = scanPackageFiles(summary.collected!);
  const scanned = performance.now();
  const c2 = cpuMs();
  const { verdicts, missing } = decideJsapis(uses, catalog, granted);
  const end = performance.now();
  cpu.full.push(cpuMs() - c);
  cpu.scan.push(c2 - c1);
  if (verdicts.length !== distinct || missing.length !== 0) throw new Error(`bench package decided wrong: ${verdicts.length} APIs, ${missing.length} missing`);
  return { total: end - t, read: read - t, scan: scanned - read, decide: end - scanned, calls: uses.length };
}

const cpu = { base: [] as number[], full: [] as number[], scan: [] as number[] };
await baseline();
await withScan(); // warm-up
cpu.base.length = cpu.full.length = cpu.scan.length = 0;
const m = { base: [] as number[], full: [] as number[], read: [] as number[], scan: [] as number[], decide: [] as number[] };
let calls = 0;
for (let r = 0; r < rounds; r++) {
  // Alternating, so that load from other processes falls on both alike.
  m.base.push(await baseline());
  const w = await withScan();
  m.full.push(w.total);
  m.read.push(w.read);
  m.scan.push(w.scan);
  m.decide.push(w.decide);
  calls = w.calls;
}
const med = (v: number[]) => percentile(v, 50);
const b = med(m.base);
const added = med(m.scan) + med(m.decide);
console.log(`calls found: ${calls}`);
console.log(`checkPackage alone (unzip + read every entry), median of ${rounds}:  ${fmt(b)}`);
console.log(`checkPackage keeping the scripts, median:                     ${fmt(med(m.read))}`);
console.log(`scan of the scripts, median:                                  ${fmt(med(m.scan))}`);
console.log(`decision, median:                                             ${fmt(med(m.decide))}`);
console.log(`checkPackage + scan + decision (end to end), median:          ${fmt(med(m.full))}  (ratio to baseline ${(med(m.full) / b).toFixed(2)}×)`);
console.log(`added by the JSAPI check (scan + decision): ${fmt(added)}, ${((added / b) * 100).toFixed(0)}% of the baseline`);
console.log(`CPU time (medians): checkPackage alone ${fmt(med(cpu.base))}; with scan + decision ${fmt(med(cpu.full))} (ratio ${(med(cpu.full) / med(cpu.base)).toFixed(2)}×); scan ${fmt(med(cpu.scan))}`);
