import { describe, expect, it } from 'vitest';
import { describeError, fingerprintOf, moduleOf, normaliseMessage, parseStack, splitReport } from './fingerprint.js';

// Real-world-shaped traces (the shapes engines and mini program runtimes print).
const chrome = (build: string, line: number) => `TypeError: Cannot read properties of undefined (reading 'price')
    at CartTotal.render (https://shop.example.com/assets/cart-${build}.js:${line}:17)
    at async Promise.all (index 0)
    at loadCart (https://shop.example.com/assets/cart-${build}.js:${line + 40}:9)
    at HTMLButtonElement.<anonymous> (https://shop.example.com/assets/index-${build}.js:88:3)
    at Array.forEach (<anonymous>)`;

const safari = `render@https://shop.example.com/assets/cart-BxK3f9aZ.js:120:23
loadCart@https://shop.example.com/assets/cart-BxK3f9aZ.js:160:11
@https://shop.example.com/assets/index-BxK3f9aZ.js:88:3
forEach@[native code]
global code@https://shop.example.com/assets/index-BxK3f9aZ.js:1:1`;

const firefox = `render@https://shop.example.com/assets/cart.3f2a9c1b.js:120:23
loadCart/<@https://shop.example.com/assets/cart.3f2a9c1b.js:160:11
promise callback*loadCart@https://shop.example.com/assets/cart.3f2a9c1b.js:150:5`;

const wechatOnError = (port: number, line: number, id: string) => `thirdScriptError
Cannot read property 'name' of undefined;at pages/index/index page onLoad function
TypeError: Cannot read property 'name' of undefined
    at Page.onLoad (http://127.0.0.1:${port}/appservice/pages/index/index.js:${line}:5)
    at Page.<anonymous> (http://127.0.0.1:${port}/appservice/__dev__/WAService.js:2:1436771)
    at Ye (http://127.0.0.1:${port}/appservice/__dev__/WAService.js:2:1436771)
    at Function.<anonymous> (http://127.0.0.1:${port}/appservice/__dev__/WAService.js:2:1440041) [request ${id}]`;

const alipay = (line: number) => `TypeError: Cannot read property 'name' of undefined
    at Object.onLoad (https://appx/pages/index/index.js:${line}:5)
    at Function.e.value (https://appx/af-appx.worker.min.js:1:187443)
    at https://appx/af-appx.worker.min.js:1:299004`;

const minified = (build: string, col: number, fn: string) => `TypeError: ${fn}.map is not a function
    at ${fn}.value (https://cdn.example.com/static/js/main.${build}.js:2:${col})
    at ${fn === 'n' ? 'r' : 'o'} (https://cdn.example.com/static/js/main.${build}.js:2:${col + 5000})
    at https://cdn.example.com/static/js/vendors~main.${build}.chunk.js:1:99321`;

describe('parseStack', () => {
  it('reads V8 frames: named, bare, async, native', () => {
    const frames = parseStack(chrome('a1b2c3d4', 10));
    expect(frames).toEqual([
      { fn: 'CartTotal.render', file: 'https://shop.example.com/assets/cart-a1b2c3d4.js', line: 10, column: 17 },
      { fn: 'Promise.all', file: null, line: null, column: null },
      { fn: 'loadCart', file: 'https://shop.example.com/assets/cart-a1b2c3d4.js', line: 50, column: 9 },
      { fn: 'HTMLButtonElement.<anonymous>', file: 'https://shop.example.com/assets/index-a1b2c3d4.js', line: 88, column: 3 },
      { fn: 'Array.forEach', file: null, line: null, column: null },
    ]);
  });

  it('reads JavaScriptCore and SpiderMonkey frames', () => {
    expect(parseStack(safari).map((f) => [f.fn, f.line])).toEqual([['render', 120], ['loadCart', 160], [null, 88], ['forEach', null], [null, 1]]);
    expect(parseStack(firefox).map((f) => f.fn)).toEqual(['render', 'loadCart', 'promise callback*loadCart']);
  });

  it('skips message lines and blank lines, even when a message holds an @', () => {
    expect(parseStack('Error: invalid address a@b.example\n\n    at send (mail.js:3:1)')).toEqual([{ fn: 'send', file: 'mail.js', line: 3, column: 1 }]);
    expect(parseStack(null)).toEqual([]);
  });

  it('reads eval frames as the calling file', () => {
    expect(parseStack('    at eval (eval at compile (https://x.test/app.js:5:10), <anonymous>:1:1)')[0]).toMatchObject({ fn: null, file: 'https://x.test/app.js', line: 5 });
  });
});

describe('moduleOf', () => {
  it.each([
    ['https://shop.example.com/assets/index-BxK3f9aZ.js', 'index.js'],
    ['https://cdn.example.com/static/js/main.3f2a9c1b.js?v=2#x', 'main.js'],
    ['https://cdn.example.com/static/js/vendors~main.3f2a9c1b.chunk.js', 'vendors~main.chunk.js'],
    ['https://cdn.example.com/static/js/787.0a1b2c3d.chunk.js', '787.chunk.js'],
    ['http://127.0.0.1:25014/appservice/pages/index/index.js', 'pages/index/index.js'],
    ['pages/cart/index.js', 'pages/cart/index.js'],
    ['https://cdn.example.com/mp/1.4.2/subpackages/order/detail.js', 'subpackages/order/detail.js'],
    ['webpack:///src/components/Cart.vue', 'components/Cart.vue'],
    ['/Users/dev/app/src/cart.ts', 'cart.ts'],
  ])('%s → %s', (file, module) => {
    expect(moduleOf(file)).toBe(module);
  });
});

describe('normaliseMessage', () => {
  it('cuts numbers, ids, uuids, hex, urls, e-mails and quoted values', () => {
    expect(normaliseMessage('Order ord_8f3k2 failed after 3 retries (HTTP 502) for https://api.example.com/v2/orders/123?x=1'))
      .toBe('Order <id> failed after <n> retries (HTTP <n>) for <url>');
    expect(normaliseMessage('User 3fa85f64-5717-4562-b3fc-2c963f66afa6 not found')).toBe('User <uuid> not found');
    expect(normaliseMessage('Invalid pointer 0x7ffd5e8c at block deadbeef42')).toBe('Invalid pointer <hex> at block <hex>');
    expect(normaliseMessage('No account for "ann@example.com"')).toBe('No account for <val>');
    expect(normaliseMessage("Coupon 'SPRING 2025' is expired")).toBe('Coupon <val> is expired');
  });

  it('keeps property names in the engines\' own wording', () => {
    expect(normaliseMessage("TypeError: Cannot read properties of undefined (reading 'price')")).toBe("TypeError: Cannot read properties of undefined (reading 'price')");
    expect(normaliseMessage("TypeError: Cannot read property 'name' of undefined")).toBe("TypeError: Cannot read property 'name' of undefined");
    expect(normaliseMessage("TypeError: undefined is not an object (evaluating 'cart.items')")).toBe("TypeError: undefined is not an object (evaluating 'cart.items')");
  });

  it('drops engine prefixes and the runtime header, keeps the first line', () => {
    expect(normaliseMessage('Uncaught (in promise) Error: timeout of 15000ms exceeded\nmore text')).toBe('Error: timeout of <n>ms exceeded');
    expect(normaliseMessage(wechatOnError(1, 12, 'x'))).toBe("TypeError: Cannot read property 'name' of undefined");
  });
});

describe('splitReport', () => {
  it('splits WeChat\'s thirdScriptError into message and stack', () => {
    const r = splitReport(wechatOnError(25014, 12, 'r1'), null);
    expect(r.message).toBe("TypeError: Cannot read property 'name' of undefined");
    expect(parseStack(r.stack)[0]).toMatchObject({ fn: 'Page.onLoad', line: 12 });
  });

  it('a message line that merely starts with "at" is not a stack', () => {
    expect(splitReport('Error: invalid cart\nat least 1 item is required', null)).toEqual({ message: 'Error: invalid cart', stack: null });
  });

  it('uses the first line when there is no error line, without the page note', () => {
    expect(splitReport('thirdScriptError\nnetwork down;at pages/cart/index page onShow function', null).message).toBe('network down');
  });
});

describe('describeError / fingerprintOf: the same error groups together', () => {
  it('across builds of a web bundle (content hashes and line numbers change)', () => {
    const msg = "TypeError: Cannot read properties of undefined (reading 'price')";
    expect(fingerprintOf(msg, chrome('a1b2c3d4', 10))).toBe(fingerprintOf(msg, chrome('BxK3f9aZ', 37)));
  });

  it('across a WeChat runtime restart (port, line, request id) — and with the stack only inside the message', () => {
    const a = describeError(wechatOnError(25014, 12, 'r1'), null);
    const b = describeError(wechatOnError(41872, 14, 'r2'), '');
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.title).toBe("TypeError: Cannot read property 'name' of undefined");
    // the runtime's own frames are not the app's: only the page's frame is kept
    expect(a.topFrames.map((f) => f.module)).toEqual(['pages/index/index.js']);
    expect(a.topFrames[0]).toMatchObject({ fn: 'Page.onLoad', line: 12, column: 5 });
  });

  it('the same page error in Alipay (appx frames skipped) across builds', () => {
    const a = describeError("TypeError: Cannot read property 'name' of undefined", alipay(12));
    expect(a.fingerprint).toBe(fingerprintOf("TypeError: Cannot read property 'name' of undefined", alipay(20)));
    expect(a.topFrames.map((f) => `${f.fn}@${f.module}`)).toEqual(['Object.onLoad@pages/index/index.js']);
  });

  it('minified bundles: renamed functions and moved columns still group by file and message', () => {
    const a = fingerprintOf('TypeError: n.map is not a function', minified('3f2a9c1b', 48211, 'n'));
    const b = fingerprintOf('TypeError: n.map is not a function', minified('9c8d7e6f', 51002, 't'));
    expect(a).toBe(b);
  });

  it('messages with ids, numbers and urls', () => {
    const stack = '    at submitOrder (pages/checkout/index.js:40:11)\n    at Page.onTap (pages/checkout/index.js:90:3)';
    const a = fingerprintOf('Error: Order ord_8f3k2 rejected: HTTP 409 from https://api.example.com/orders/8812', stack);
    const b = fingerprintOf('Error: Order ord_77ab1x rejected: HTTP 422 from https://api.example.com/orders/91', stack);
    const c = fingerprintOf('Uncaught Error: Order ord_1 rejected: HTTP 500 from http://10.0.0.2/orders/1', stack);
    expect(new Set([a, b, c]).size).toBe(1);
  });

  it('a message without a stack groups by its normalised message', () => {
    expect(fingerprintOf('Request timeout after 15000ms', null)).toBe(fingerprintOf('Request timeout after 30000ms', ''));
  });
});

describe('describeError / fingerprintOf: different errors stay apart', () => {
  it('same message, different function', () => {
    const msg = "TypeError: Cannot read properties of undefined (reading 'price')";
    const other = chrome('a1b2c3d4', 10).replace('CartTotal.render', 'CartBadge.render');
    expect(fingerprintOf(msg, chrome('a1b2c3d4', 10))).not.toBe(fingerprintOf(msg, other));
  });

  it('same function name in two pages of a mini program', () => {
    const home = '    at Page.onLoad (http://127.0.0.1:1/appservice/pages/home/index.js:12:5)';
    const cart = '    at Page.onLoad (http://127.0.0.1:1/appservice/pages/cart/index.js:12:5)';
    expect(fingerprintOf('Error: boom', home)).not.toBe(fingerprintOf('Error: boom', cart));
  });

  it('same place, different property or error type', () => {
    const stack = chrome('a1b2c3d4', 10);
    expect(fingerprintOf("TypeError: Cannot read properties of undefined (reading 'price')", stack))
      .not.toBe(fingerprintOf("TypeError: Cannot read properties of undefined (reading 'quantity')", stack));
    expect(fingerprintOf('RangeError: Invalid array length', stack)).not.toBe(fingerprintOf('TypeError: Invalid array length', stack));
  });

  it('React\'s minified error codes name different errors', () => {
    const stack = '    at Ia (https://shop.example.com/static/js/react-dom.production.min.js:1:99812)';
    const e = (code: number) => `Error: Minified React error #${code}; visit https://reactjs.org/docs/error-decoder.html?invariant=${code} for the full message`;
    expect(normaliseMessage(e(185))).toBe('Error: Minified React error #185; visit <url> for the full message');
    expect(fingerprintOf(e(185), stack)).not.toBe(fingerprintOf(e(418), stack));
  });

  it('Node-shaped traces: internal frames are skipped', () => {
    const node = `Error: connect ECONNREFUSED 10.0.0.7:5432
    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)
    at Pool.connect (/srv/app/node_modules/pg-pool/index.js:45:11)
    at loadOrders (/srv/app/dist/orders.js:12:20)`;
    expect(describeError(node, node).topFrames.map((f) => `${f.fn}@${f.module}`)).toEqual(['Pool.connect@index.js', 'loadOrders@orders.js']);
    expect(normaliseMessage('Error: connect ECONNREFUSED 10.0.0.7:5432')).toBe('Error: connect ECONNREFUSED <ip>:<n>');
  });

  it('minified: another bundle file is another group', () => {
    const a = fingerprintOf('TypeError: n.map is not a function', minified('3f2a9c1b', 48211, 'n'));
    const b = fingerprintOf('TypeError: n.map is not a function', minified('3f2a9c1b', 48211, 'n').replaceAll('/main.', '/checkout.'));
    expect(a).not.toBe(b);
  });

  it('Safari and Firefox traces of the same code parse to the same top frames', () => {
    const s = describeError('TypeError: x', safari);
    const f = describeError('TypeError: x', firefox);
    expect(s.topFrames.slice(0, 2).map((t) => `${t.fn}@${t.module}`)).toEqual(['render@cart.js', 'loadCart@cart.js']);
    expect(f.topFrames.slice(0, 2).map((t) => `${t.fn}@${t.module}`)).toEqual(['render@cart.js', 'loadCart@cart.js']);
  });

  it('fingerprints are 32 hex characters and titles are one trimmed line', () => {
    const d = describeError(`Error: ${'x'.repeat(400)}\nsecond line`, null);
    expect(d.fingerprint).toMatch(/^[0-9a-f]{32}$/);
    expect(d.title.length).toBeLessThanOrEqual(200);
    expect(d.title).not.toContain('\n');
    expect(describeError('', null).title).toBe('(no message)');
  });
});
