/*!
 * mpdp tracker — sends a mini program's launches, page views, custom events, timings, errors and
 * crashes to mpdp's POST /api/v1/collect. Dependency-free ES2017. Loaded as an ES module it
 * exports createTracker; served as a classic script (/sdk/mpdp-tracker.global.js, this file
 * without its last line) it sets globalThis.mpdpTracker (and module.exports under CommonJS).
 */
var mpdpTracker = (function () {
  'use strict';

  var sdkVersion = '1.0.0';
  /** The collect endpoint's limits (a batch: 500 events and 1 MB; an event's message and stack). */
  var serverMaxBatch = 500;
  var maxBatchBytes = 900 * 1024;
  var maxMessageChars = 8 * 1024;
  var maxStackChars = 32 * 1024;
  /** sendBeacon may keep at most 64 KB in flight per page: each beacon stays well below. */
  var maxBeaconBytes = 60 * 1024;
  var sessionTimeoutDefault = 30 * 60 * 1000;
  var keys = { user: 'mpdp_uid', session: 'mpdp_session', queue: 'mpdp_queue' };

  function hex(bytes) {
    var out = '';
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] + 0x100).toString(16).slice(1);
    return out;
  }

  /** A uuid v4: crypto.randomUUID where present, else getRandomValues, else Math.random. */
  function uuid(g) {
    var c = g.crypto;
    if (c && typeof c.randomUUID === 'function') return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = hex(b);
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  /** Storage of the host: localStorage in a browser, my./wx. sync storage in a mini program, else memory. */
  function defaultStorage(g) {
    try {
      if (g.localStorage) {
        var probe = '__mpdp_probe';
        g.localStorage.setItem(probe, '1');
        g.localStorage.removeItem(probe);
        return { get: function (k) { return g.localStorage.getItem(k); }, set: function (k, v) { g.localStorage.setItem(k, v); }, remove: function (k) { g.localStorage.removeItem(k); } };
      }
    } catch (e) { /* private mode or disabled: fall through */ }
    if (g.my && typeof g.my.getStorageSync === 'function') {
      // Alipay-style: object arguments, the value under .data.
      return {
        get: function (k) { var r = g.my.getStorageSync({ key: k }); return r && r.data != null ? String(r.data) : null; },
        set: function (k, v) { g.my.setStorageSync({ key: k, data: v }); },
        remove: function (k) { g.my.removeStorageSync({ key: k }); },
      };
    }
    if (g.wx && typeof g.wx.getStorageSync === 'function') {
      return {
        get: function (k) { var v = g.wx.getStorageSync(k); return v === '' || v == null ? null : String(v); },
        set: function (k, v) { g.wx.setStorageSync(k, v); },
        remove: function (k) { g.wx.removeStorageSync(k); },
      };
    }
    var mem = {};
    return { get: function (k) { return k in mem ? mem[k] : null; }, set: function (k, v) { mem[k] = v; }, remove: function (k) { delete mem[k]; } };
  }

  /**
   * The host's HTTP: fetch (no custom header and a text/plain body, so a browser sends it without a
   * CORS preflight; keepalive so it survives a navigation), else my.request / wx.request.
   * send(url, body) resolves { status, retryAfter, body } or rejects on a network error.
   */
  function defaultTransport(g) {
    var t = {};
    if (typeof g.fetch === 'function') {
      t.send = function (url, body) {
        return g.fetch(url, { method: 'POST', body: body, headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, keepalive: byteLength(body) < maxBeaconBytes, credentials: 'omit' })
          .then(function (res) {
            return res.text().then(function (text) {
              var parsed = null;
              try { parsed = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
              return { status: res.status, retryAfter: res.headers.get('Retry-After'), body: parsed };
            });
          });
      };
    } else {
      var req = (g.my && g.my.request) || (g.wx && g.wx.request);
      var host = g.my && g.my.request ? g.my : g.wx;
      if (req) {
        t.send = function (url, body) {
          return new Promise(function (resolve, reject) {
            req.call(host, {
              url: url, method: 'POST', data: body, dataType: 'text',
              header: { 'content-type': 'text/plain' }, headers: { 'content-type': 'text/plain' },
              success: function (res) {
                var h = res.header || res.headers || {};
                var parsed = res.data;
                if (typeof parsed === 'string') { try { parsed = JSON.parse(parsed); } catch (e) { parsed = null; } }
                resolve({ status: res.statusCode || res.status, retryAfter: h['Retry-After'] || h['retry-after'] || null, body: parsed });
              },
              fail: function (err) { reject(err); },
            });
          });
        };
      }
    }
    if (g.navigator && typeof g.navigator.sendBeacon === 'function') {
      t.beacon = function (url, body) {
        var data = typeof g.Blob === 'function' ? new g.Blob([body], { type: 'text/plain' }) : body;
        return g.navigator.sendBeacon(url, data);
      };
    }
    return t;
  }

  /** Retry-After as ms: delta-seconds or an HTTP date; null when absent or unreadable. */
  function retryAfterMs(value, now) {
    if (value == null || value === '') return null;
    var s = String(value).trim();
    if (/^\d+(\.\d+)?$/.test(s)) return Math.round(parseFloat(s) * 1000);
    var at = Date.parse(s);
    return isNaN(at) ? null : Math.max(0, at - now);
  }

  function clip(text, max) {
    text = String(text);
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  /** A thrown value as { message, stack }: Errors, ErrorEvents' payloads, strings, anything. */
  function describe(error) {
    if (error && typeof error === 'object') {
      var name = error.name && error.name !== 'Error' ? error.name + ': ' : '';
      var message = error.message != null ? name + error.message : (function () { try { return JSON.stringify(error); } catch (e) { return String(error); } })();
      return { message: message || 'Unknown error', stack: typeof error.stack === 'string' ? error.stack : null };
    }
    return { message: error === undefined ? 'undefined' : String(error), stack: null };
  }

  function byteLength(text) {
    // UTF-8 length without TextEncoder (old runtimes).
    var n = 0;
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? (i++, 4) : 3;
    }
    return n;
  }

  /**
   * A tracker for one mini program. Options: endpoint (the platform's URL or its collect URL),
   * ingestKey, miniProgramId, version or versionId, hostAppId, userId, storage, transport, global,
   * flushIntervalMs (5000), maxBatch (50, at most 500), maxQueue (1000), sessionTimeoutMs (30 min),
   * retryBaseMs (1000), retryMaxMs (60000), captureErrors (true), uncaught ('crash' | 'error'),
   * maxErrorsPerMinute (30), persistQueue (true), onDrop(events, reason).
   */
  function createTracker(options) {
    var o = options || {};
    if (!o.endpoint) throw new Error('mpdp tracker: endpoint is required');
    if (!o.ingestKey) throw new Error('mpdp tracker: ingestKey is required');
    if (!o.version && !o.versionId) throw new Error('mpdp tracker: version or versionId is required');
    var g = o.global || (typeof globalThis !== 'undefined' ? globalThis : typeof self !== 'undefined' ? self : {});
    var storage = o.storage || defaultStorage(g);
    var transport = o.transport || defaultTransport(g);
    var flushIntervalMs = o.flushIntervalMs != null ? o.flushIntervalMs : 5000;
    var maxBatch = Math.max(1, Math.min(serverMaxBatch, o.maxBatch || 50));
    var maxQueue = Math.max(1, o.maxQueue || 1000);
    var sessionTimeoutMs = o.sessionTimeoutMs || sessionTimeoutDefault;
    var retryBaseMs = o.retryBaseMs || 1000;
    var retryMaxMs = o.retryMaxMs || 60000;
    var maxErrorsPerMinute = o.maxErrorsPerMinute || 30;
    var uncaughtType = o.uncaught === 'error' ? 'error' : 'crash';
    var random = o.random || Math.random;
    var base = String(o.endpoint).replace(/\/+$/, '');
    var collectUrl = /\/collect$/.test(base) ? base : base + '/api/v1/collect';
    var keyedUrl = collectUrl + (collectUrl.indexOf('?') < 0 ? '?' : '&') + 'key=' + encodeURIComponent(o.ingestKey);

    var queue = [];
    var inFlight = null;
    var timer = null;
    var backoffUntil = 0;
    var attempts = 0;
    var closed = false;
    var errorWindow = { start: 0, count: 0 };
    var stats = { queued: 0, sent: 0, rejected: 0, dropped: 0, retries: 0, beacons: 0 };
    var detach = [];

    function safe(fn, fallback) {
      try { return fn(); } catch (e) { return fallback; }
    }

    var anonymousId = safe(function () { return storage.get(keys.user); }, null);
    if (!anonymousId) {
      anonymousId = uuid(g);
      safe(function () { storage.set(keys.user, anonymousId); });
    }
    var userId = o.userId ? String(o.userId) : anonymousId;
    var persisted = false;
    var session = safe(function () { return JSON.parse(storage.get(keys.session) || 'null'); }, null);
    if (!session || typeof session.id !== 'string' || !(Date.now() - session.last < sessionTimeoutMs)) session = null;

    function drop(events, reason) {
      if (!events.length) return;
      stats.dropped += events.length;
      if (typeof o.onDrop === 'function') safe(function () { o.onDrop(events, reason); });
    }

    /** The session: a new one per launch and after sessionTimeoutMs without an event. */
    function sessionId(now, fresh) {
      if (fresh || !session || now - session.last >= sessionTimeoutMs) session = { id: uuid(g), last: now };
      session.last = now;
      safe(function () { storage.set(keys.session, JSON.stringify(session)); });
      return session.id;
    }

    function record(type, fields, freshSession) {
      if (closed) return null;
      var now = Date.now();
      var e = { id: uuid(g), type: type, at: now, miniProgramId: o.miniProgramId, userId: userId, sessionId: sessionId(now, freshSession) };
      if (o.versionId) e.versionId = o.versionId;
      else e.version = o.version;
      if (o.hostAppId) e.hostAppId = o.hostAppId;
      for (var k in fields) if (fields[k] != null) e[k] = fields[k];
      if (!e.miniProgramId) delete e.miniProgramId;
      queue.push(e);
      stats.queued++;
      // Over the cap the oldest go: the newest say most about the app's state now.
      if (queue.length > maxQueue) {
        var over = queue.length - maxQueue;
        var oldest = queue.filter(function (x) { return !isSending(x); }).slice(0, over);
        remove(oldest);
        drop(oldest, 'queue_full');
      }
      if (queue.length - sendingCount() >= maxBatch) schedule(0);
      else if (!timer) schedule(flushIntervalMs);
      return e.id;
    }

    var sending = null;
    function isSending(e) { return !!sending && sending.indexOf(e) >= 0; }
    function sendingCount() { return sending ? sending.length : 0; }

    function schedule(delay) {
      if (closed && delay > 0) return;
      var wait = Math.max(delay, backoffUntil - Date.now(), 0);
      if (timer) clearTimeout(timer);
      timer = setTimeout(function () {
        timer = null;
        // A failed flush schedules its own retry; nothing is thrown at the host.
        flush().then(undefined, function () {});
      }, wait);
    }

    /** Next batch: up to maxBatch events and ~900 KB of JSON, with its serialized body. */
    function nextBatch(limitBytes) {
      var batch = [];
      var size = 12;
      for (var i = 0; i < queue.length && batch.length < maxBatch; i++) {
        var n = byteLength(JSON.stringify(queue[i])) + 1;
        if (batch.length && size + n > limitBytes) break;
        batch.push(queue[i]);
        size += n;
      }
      return batch;
    }

    function remove(events) {
      queue = queue.filter(function (e) { return events.indexOf(e) < 0; });
    }

    function backoff(retryAfter) {
      attempts++;
      stats.retries++;
      var cap = Math.min(retryMaxMs, retryBaseMs * Math.pow(2, attempts - 1));
      // Equal jitter: half the step fixed, half random, so many clients do not retry in step.
      var delay = cap / 2 + random() * (cap / 2);
      var told = retryAfterMs(retryAfter, Date.now());
      if (told != null) delay = Math.max(told, 0) + random() * Math.min(1000, told * 0.1 + 100);
      backoffUntil = Date.now() + delay;
      schedule(delay);
    }

    /** Sends what is queued, one batch after another; resolves when the queue is empty or a send failed. */
    function flush() {
      if (inFlight) return inFlight.then(function () { return queue.length ? flush() : undefined; });
      if (!queue.length || !transport.send) return Promise.resolve();
      if (Date.now() < backoffUntil) { schedule(0); return Promise.resolve(); }
      if (timer) { clearTimeout(timer); timer = null; }
      var batch = nextBatch(maxBatchBytes);
      sending = batch;
      var body = JSON.stringify({ events: batch });
      inFlight = Promise.resolve()
        .then(function () { return transport.send(keyedUrl, body); })
        .then(function (res) {
          var status = res && res.status;
          if (status >= 200 && status < 300) {
            attempts = 0;
            backoffUntil = 0;
            remove(batch);
            if (persisted && !queue.length) { persisted = false; safe(function () { storage.remove(keys.queue); }); }
            var rejected = (res.body && res.body.rejected) || [];
            stats.sent += batch.length - rejected.length;
            stats.rejected += rejected.length;
            // The server said why; retrying the same event cannot help.
            if (rejected.length) drop(rejected.map(function (r) { return Object.assign({}, batch[r.index], { rejected: r }); }), 'rejected');
            return true;
          }
          if (status === 429 || status >= 500 || !status) { backoff(res && res.retryAfter); return false; }
          // 400/401/403/413…: the batch (or key) is refused as a whole; retrying cannot help.
          remove(batch);
          attempts = 0;
          drop(batch, 'http_' + status);
          return true;
        }, function () {
          backoff(null);
          return false;
        })
        .then(function (ok) {
          inFlight = null;
          sending = null;
          if (ok && queue.length) return flush();
          if (queue.length && !timer) schedule(flushIntervalMs);
          return undefined;
        });
      return inFlight;
    }

    /**
     * Page hide: what is queued goes out by sendBeacon (in chunks under its 64 KB quota), not
     * waiting for a backoff; whatever the beacon would not take is kept in storage for next time.
     */
    function flushOnHide() {
      if (!queue.length) return;
      var unsent = queue.slice();
      if (transport.beacon) {
        while (unsent.length) {
          var saved = queue;
          queue = unsent;
          var chunk = nextBatch(maxBeaconBytes);
          queue = saved;
          var ok = safe(function () { return transport.beacon(keyedUrl, JSON.stringify({ events: chunk })); }, false);
          if (!ok) break;
          stats.beacons++;
          unsent = unsent.slice(chunk.length);
        }
        // Beaconed events leave the queue: their answer is never read (a duplicate would count once anyway).
        var gone = queue.filter(function (e) { return unsent.indexOf(e) < 0 && !isSending(e); });
        remove(gone);
        stats.sent += gone.length;
      } else {
        flush().then(undefined, function () {});
      }
      if (o.persistQueue !== false && unsent.length) {
        persisted = safe(function () { storage.set(keys.queue, JSON.stringify(unsent.slice(-200))); return true; }, false);
      }
    }

    function onVisible() {
      // Back in view: the events are in memory again, the stored copy is not needed.
      if (persisted) safe(function () { storage.remove(keys.queue); });
      persisted = false;
    }

    // Events a previous page kept when it was hidden and could not send them (ids keep duplicates out).
    var kept = safe(function () { return JSON.parse(storage.get(keys.queue) || '[]'); }, []);
    safe(function () { storage.remove(keys.queue); });
    if (Array.isArray(kept) && kept.length) {
      queue = kept.filter(function (e) { return e && typeof e.id === 'string'; }).slice(-maxQueue);
      schedule(0);
    }

    function captureError(error, opts) {
      var now = Date.now();
      if (now - errorWindow.start >= 60000) errorWindow = { start: now, count: 0 };
      // An error thrown in a loop (each frame, each tick) would drown everything else.
      if (++errorWindow.count > maxErrorsPerMinute) { stats.dropped++; return null; }
      var d = describe(error);
      var fields = { message: clip(d.message, maxMessageChars), stack: d.stack ? clip(d.stack, maxStackChars) : null, page: opts && opts.page ? clip(opts.page, 512) : currentPage() };
      if (opts && opts.properties) fields.properties = opts.properties;
      return record(opts && opts.fatal ? 'crash' : 'error', fields);
    }

    function currentPage() {
      if (typeof o.page === 'function') return safe(o.page, null);
      var loc = g.location;
      return loc && typeof loc.pathname === 'string' ? clip(loc.pathname, 512) : null;
    }

    function listen(target, type, fn) {
      if (!target || typeof target.addEventListener !== 'function') return;
      target.addEventListener(type, fn);
      detach.push(function () { target.removeEventListener(type, fn); });
    }

    if (o.captureErrors !== false) {
      listen(g, 'error', function (ev) {
        // Resource load failures (an <img> 404) bubble here without an error: not script errors.
        if (!ev || (ev.error == null && !ev.message)) return;
        var err = ev.error != null ? ev.error : { message: ev.message, stack: ev.filename ? 'at ' + ev.filename + ':' + ev.lineno + ':' + ev.colno : null };
        captureError(err, { fatal: uncaughtType === 'crash' });
      });
      listen(g, 'unhandledrejection', function (ev) {
        var reason = ev && 'reason' in ev ? ev.reason : ev;
        captureError(reason instanceof Object && 'message' in reason ? reason : { name: 'UnhandledRejection', message: describe(reason).message, stack: null }, { fatal: false });
      });
      ['my', 'wx'].forEach(function (name) {
        var api = g[name];
        if (api && typeof api.onError === 'function') {
          var fn = function (err) {
            // The runtimes pass "message\nstack" as one string, or an Error.
            if (typeof err === 'string') {
              var nl = err.indexOf('\n');
              err = { message: nl < 0 ? err : err.slice(0, nl), stack: nl < 0 ? null : err.slice(nl + 1) };
            }
            captureError(err, { fatal: uncaughtType === 'crash' });
          };
          api.onError(fn);
          if (typeof api.offError === 'function') detach.push(function () { api.offError(fn); });
        }
        if (api && typeof api.onUnhandledRejection === 'function') {
          var rej = function (res) { captureError(res && 'reason' in res ? res.reason : res, { fatal: false }); };
          api.onUnhandledRejection(rej);
          if (typeof api.offUnhandledRejection === 'function') detach.push(function () { api.offUnhandledRejection(rej); });
        }
      });
    }

    var doc = g.document;
    listen(doc, 'visibilitychange', function () {
      if (doc.visibilityState === 'hidden') flushOnHide();
      else onVisible();
    });
    listen(g, 'pagehide', flushOnHide);
    ['my', 'wx'].forEach(function (name) {
      var api = g[name];
      if (api && typeof api.onAppHide === 'function') {
        api.onAppHide(flushOnHide);
        if (typeof api.offAppHide === 'function') detach.push(function () { api.offAppHide(flushOnHide); });
      }
    });

    return {
      /** The app (re)started: a new session and a launch event. */
      launch: function (properties) { return record('launch', { properties: properties }, true); },
      /** A page was shown; durationMs: how long the previous showing of it lasted, when known. */
      pageView: function (page, durationMs) {
        if (!page) throw new Error('mpdp tracker: pageView needs a page');
        return record('page_view', { page: clip(page, 512), value: typeof durationMs === 'number' && isFinite(durationMs) && durationMs >= 0 ? Math.round(durationMs) : null });
      },
      track: function (name, properties) {
        if (!name) throw new Error('mpdp tracker: track needs a name');
        return record('custom', { name: clip(name, 128), properties: properties, page: currentPage() });
      },
      perf: function (name, ms) {
        if (!name || typeof ms !== 'number' || !isFinite(ms) || ms < 0) throw new Error('mpdp tracker: perf needs a name and a duration in ms');
        return record('perf', { name: clip(name, 128), value: ms, page: currentPage() });
      },
      captureError: captureError,
      /** Later events carry this user id (a signed-in user); the anonymous id stays in storage. */
      setUserId: function (id) { userId = id ? String(id) : anonymousId; },
      flush: flush,
      /** Sends what is queued and stops listening; later calls record nothing. */
      shutdown: function () {
        closed = true;
        detach.forEach(function (fn) { safe(fn); });
        detach = [];
        return flush().then(function () {
          if (timer) { clearTimeout(timer); timer = null; }
        });
      },
      stats: function () { return Object.assign({ pending: queue.length }, stats); },
      get userId() { return userId; },
      get sessionId() { return session ? session.id : null; },
    };
  }

  var api = { createTracker: createTracker, version: sdkVersion };
  if (typeof globalThis !== 'undefined') globalThis.mpdpTracker = api;
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  return api;
})();
export const createTracker = mpdpTracker.createTracker;
