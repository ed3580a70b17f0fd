/**
 * The built-in JSAPI catalog: the APIs host apps offer mini programs (`my.<name>(…)` /
 * `wx.<name>(…)`), with their parameters and results as JSON Schema. Migration 0011 copies it into
 * `jsapi_builtins`, and every workspace gets its own editable copy (table `jsapis`).
 * Pure data and pure checks: imported by the migration, the API and the tests.
 */

export const jsapiCategories = ['network', 'storage', 'media', 'location', 'device', 'ui', 'navigation', 'payment', 'user_info'] as const;
export type JsapiCategory = (typeof jsapiCategories)[number];

/**
 * open: any mini program may call it. needs_feature: only when a feature the mini program holds
 * lists it. restricted: like needs_feature, and only features with access mode "activation" may list it.
 */
export const permissionLevels = ['open', 'needs_feature', 'restricted'] as const;
export type PermissionLevel = (typeof permissionLevels)[number];

/** disabled: nobody may call it (kept in the catalog so packages that use it are refused by name). */
export const jsapiStatuses = ['active', 'deprecated', 'disabled'] as const;
export type JsapiStatus = (typeof jsapiStatuses)[number];

/** The subset of JSON Schema the catalog uses to describe parameters and results. */
export interface JsonSchema {
  type?: JsonType | JsonType[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: (string | number | boolean | null)[];
  const?: string | number | boolean | null;
  default?: unknown;
  examples?: unknown[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  additionalProperties?: boolean | JsonSchema;
}
export type JsonType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';
const jsonTypes: readonly string[] = ['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'];

export interface JsapiEntry {
  name: string;
  category: JsapiCategory;
  description: string;
  params: JsonSchema;
  result: JsonSchema;
  permissionLevel: PermissionLevel;
  minHostVersion: string;
  status: JsapiStatus;
}

/** A JSAPI name as code calls it: `my.getLocation` → `getLocation`. */
export const jsapiNamePattern = /^[A-Za-z][A-Za-z0-9_]{0,79}$/;
/** A host app version: 1 to 4 dot-separated numbers. */
export const hostVersionPattern = /^\d{1,4}(\.\d{1,4}){0,3}$/;
/** Largest params / result schema accepted, serialized. */
export const maxSchemaBytes = 20_000;
const maxSchemaDepth = 8;

// ---- schema builders (the catalog below stays readable) ----
type Props = Record<string, JsonSchema>;
const str = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'string', description, ...extra });
const num = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'number', description, ...extra });
const int = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'integer', description, ...extra });
const bool = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'boolean', description, ...extra });
const oneOf = (description: string, values: string[], extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'string', enum: values, description, ...extra });
const arr = (description: string, items: JsonSchema, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'array', description, items, ...extra });
const obj = (properties: Props, required: string[] = [], description?: string): JsonSchema => ({
  type: 'object', ...(description ? { description } : {}), properties, ...(required.length ? { required } : {}),
});
const none = obj({});
const success = obj({ success: bool('true when the call succeeded') }, ['success']);

const headers: JsonSchema = { type: 'object', description: 'request headers (content-type defaults to application/json)', additionalProperties: { type: 'string' } };
const filePath = str('local file path (a temp path from a chooser, or one under the mini program\'s user data directory)');
const lat = num('latitude, WGS-84 unless `type` says otherwise', { minimum: -90, maximum: 90 });
const lng = num('longitude', { minimum: -180, maximum: 180 });
const color = (d: string) => str(d, { pattern: '^#[0-9A-Fa-f]{6}$' });
const pageUrl = str('path of a page in the app, with an optional query: /pages/detail/index?id=42', { maxLength: 1024 });

function api(
  name: string, category: JsapiCategory, permissionLevel: PermissionLevel, minHostVersion: string, description: string,
  params: JsonSchema, result: JsonSchema = success, status: JsapiStatus = 'active',
): JsapiEntry {
  return { name, category, description, params, result, permissionLevel, minHostVersion, status };
}

/** The catalog every workspace starts with. */
export const jsapiCatalog: readonly JsapiEntry[] = [
  // ---- network ----
  api('request', 'network', 'open', '10.1.0', 'Sends an HTTPS request to a server domain the mini program is allowed to call, and answers the status, headers and body.',
    obj({
      url: str('https URL on an allowed server domain', { format: 'uri', maxLength: 2048 }),
      method: oneOf('HTTP method', ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'], { default: 'GET' }),
      headers,
      data: { type: ['object', 'string'], description: 'request body: an object is sent as JSON (or form-encoded for GET query)' },
      timeout: int('milliseconds before the request fails', { minimum: 1, maximum: 60000, default: 30000 }),
      dataType: oneOf('how to parse the answer', ['json', 'text', 'base64'], { default: 'json' }),
    }, ['url']),
    obj({ status: int('HTTP status code'), headers: { type: 'object', description: 'response headers', additionalProperties: { type: 'string' } }, data: { type: ['object', 'array', 'string'], description: 'parsed body' } }, ['status', 'headers', 'data'])),
  api('uploadFile', 'network', 'open', '10.1.0', 'Uploads a local file to an allowed server domain as multipart/form-data.',
    obj({ url: str('https URL on an allowed server domain', { format: 'uri' }), filePath, fileName: str('name of the form field holding the file'), fileType: oneOf('kind of file', ['image', 'video', 'audio', 'file']), header: headers, formData: { type: 'object', description: 'extra form fields', additionalProperties: { type: 'string' } } }, ['url', 'filePath', 'fileName']),
    obj({ statusCode: int('HTTP status code'), data: str('response body as text') }, ['statusCode', 'data'])),
  api('downloadFile', 'network', 'open', '10.1.0', 'Downloads a file from an allowed server domain to a temporary local path.',
    obj({ url: str('https URL on an allowed server domain', { format: 'uri' }), header: headers }, ['url']),
    obj({ apFilePath: str('temporary local path of the downloaded file'), statusCode: int('HTTP status code') }, ['apFilePath'])),
  api('connectSocket', 'network', 'open', '10.1.10', 'Opens a WebSocket connection (wss only) to an allowed server domain; messages arrive through onSocketMessage.',
    obj({ url: str('wss URL on an allowed server domain', { format: 'uri' }), header: headers, protocols: arr('sub-protocols', { type: 'string' }), multiple: bool('return a SocketTask so several sockets can be open', { default: false }) }, ['url']),
    obj({ socketTaskId: str('id of the socket task when multiple is true') })),
  api('sendSocketMessage', 'network', 'open', '10.1.10', 'Sends a text or binary message over the open WebSocket.',
    obj({ data: str('message; base64 when isBuffer is true'), isBuffer: bool('data is base64-encoded binary', { default: false }) }, ['data'])),
  api('closeSocket', 'network', 'open', '10.1.10', 'Closes the open WebSocket connection.',
    obj({ code: int('close code', { minimum: 1000, maximum: 4999, default: 1000 }), reason: str('close reason', { maxLength: 123 }) })),
  api('getNetworkType', 'network', 'open', '10.1.0', 'Answers whether the device is online and the kind of network it uses.',
    none, obj({ networkAvailable: bool('the device is online'), networkType: oneOf('network kind', ['WIFI', '2G', '3G', '4G', '5G', 'UNKNOWN', 'NOTREACHABLE']) }, ['networkAvailable', 'networkType'])),
  api('onNetworkStatusChange', 'network', 'open', '10.1.0', 'Registers a listener called whenever connectivity or the network type changes.',
    none, obj({ isConnected: bool('online after the change'), networkType: str('network kind after the change') })),
  api('sendHttpRequest', 'network', 'open', '9.0.0', 'Former name of request, kept for old packages; use request.',
    obj({ url: str('https URL', { format: 'uri' }), method: oneOf('HTTP method', ['GET', 'POST']), data: { type: 'object', description: 'body' } }, ['url']),
    obj({ status: int('HTTP status code'), data: { type: ['object', 'string'], description: 'body' } }), 'deprecated'),

  // ---- storage ----
  api('setStorage', 'storage', 'open', '10.1.0', 'Stores a value under a key in the mini program\'s local cache (10 MB per mini program and user).',
    obj({ key: str('cache key', { maxLength: 128 }), data: { type: ['object', 'array', 'string', 'number', 'boolean'], description: 'value to store (JSON-serialisable, at most 200 KB per key)' } }, ['key', 'data'])),
  api('getStorage', 'storage', 'open', '10.1.0', 'Reads the value stored under a key.',
    obj({ key: str('cache key', { maxLength: 128 }) }, ['key']), obj({ data: { type: ['object', 'array', 'string', 'number', 'boolean', 'null'], description: 'the stored value, null when missing' } }, ['data'])),
  api('removeStorage', 'storage', 'open', '10.1.0', 'Removes the value stored under a key.', obj({ key: str('cache key', { maxLength: 128 }) }, ['key'])),
  api('clearStorage', 'storage', 'open', '10.1.0', 'Removes every value this mini program stored for the current user.', none),
  api('getStorageInfo', 'storage', 'open', '10.1.0', 'Answers the keys in the cache and how much of the quota they use.',
    none, obj({ keys: arr('stored keys', { type: 'string' }), currentSize: int('KB used'), limitSize: int('KB allowed') }, ['keys', 'currentSize', 'limitSize'])),
  api('getFileInfo', 'storage', 'open', '10.1.0', 'Answers the size and digest of a local file.',
    obj({ filePath, digestAlgorithm: oneOf('digest', ['md5', 'sha1'], { default: 'md5' }) }, ['filePath']), obj({ size: int('bytes'), digest: str('hex digest') }, ['size', 'digest'])),
  api('saveFile', 'storage', 'open', '10.1.0', 'Moves a temporary file into the mini program\'s persistent user data directory.',
    obj({ tempFilePath: str('temporary path from a chooser or downloadFile') }, ['tempFilePath']), obj({ savedFilePath: str('persistent local path') }, ['savedFilePath'])),
  api('getSecureStorage', 'storage', 'needs_feature', '10.2.30', 'Reads a value from the host\'s encrypted, device-bound keystore (for tokens and other secrets).',
    obj({ key: str('keystore entry name', { maxLength: 64 }) }, ['key']), obj({ data: { type: ['string', 'null'], description: 'the stored secret, null when missing' } }, ['data'])),

  // ---- media ----
  api('chooseImage', 'media', 'open', '10.1.0', 'Lets the user pick images from the album or take a photo; answers temporary paths.',
    obj({ count: int('most images to pick', { minimum: 1, maximum: 9, default: 1 }), sizeType: arr('original or compressed', { type: 'string', enum: ['original', 'compressed'] }), sourceType: arr('where from', { type: 'string', enum: ['album', 'camera'] }) }),
    obj({ apFilePaths: arr('temporary paths', { type: 'string' }), tempFiles: arr('picked files', obj({ path: str('temporary path'), size: int('bytes') }, [], 'one picked file')) }, ['apFilePaths'])),
  api('previewImage', 'media', 'open', '10.1.0', 'Shows images full screen with swipe and pinch zoom.',
    obj({ urls: arr('https URLs or local paths', { type: 'string' }, { minItems: 1 }), current: int('index shown first', { minimum: 0, default: 0 }) }, ['urls'])),
  api('compressImage', 'media', 'open', '10.1.25', 'Compresses local images; answers new temporary paths.',
    obj({ apFilePaths: arr('local image paths', { type: 'string' }), compressLevel: int('0 (lowest quality) to 4 (best)', { minimum: 0, maximum: 4, default: 4 }) }, ['apFilePaths']),
    obj({ apFilePaths: arr('compressed temporary paths', { type: 'string' }) }, ['apFilePaths'])),
  api('getImageInfo', 'media', 'open', '10.1.0', 'Answers the width, height, orientation and type of an image.',
    obj({ src: str('https URL or local path') }, ['src']),
    obj({ width: int('pixels'), height: int('pixels'), path: str('local path'), orientation: oneOf('EXIF orientation', ['up', 'down', 'left', 'right']), type: str('image type, e.g. png') }, ['width', 'height', 'path'])),
  api('saveImageToPhotosAlbum', 'media', 'needs_feature', '10.1.35', 'Saves an image into the user\'s photo album (asks the user for album access).',
    obj({ filePath: str('local path or https URL of the image') }, ['filePath'])),
  api('chooseVideo', 'media', 'open', '10.1.25', 'Lets the user pick a video or record one.',
    obj({ sourceType: arr('where from', { type: 'string', enum: ['album', 'camera'] }), maxDuration: int('seconds, at most 60', { minimum: 1, maximum: 60, default: 60 }), camera: oneOf('camera', ['back', 'front'], { default: 'back' }) }),
    obj({ filePath: str('temporary path'), duration: num('seconds'), size: int('bytes'), width: int('pixels'), height: int('pixels') }, ['filePath'])),
  api('saveVideoToPhotosAlbum', 'media', 'needs_feature', '10.1.35', 'Saves a video into the user\'s photo album.', obj({ filePath: str('local path of the video') }, ['filePath'])),
  api('getRecorderManager', 'media', 'needs_feature', '10.1.50', 'Answers the audio recorder (start, pause, stop; needs microphone access).',
    none, obj({ recorderId: str('handle of the recorder') }, ['recorderId'])),
  api('createInnerAudioContext', 'media', 'open', '10.1.50', 'Creates an audio player for short sounds and music inside the page.',
    none, obj({ audioContextId: str('handle of the player') }, ['audioContextId'])),
  api('getBackgroundAudioManager', 'media', 'restricted', '10.2.0', 'Answers the background audio player that keeps playing after the mini program leaves the foreground.',
    none, obj({ managerId: str('handle of the manager') }, ['managerId'])),

  // ---- location ----
  api('getLocation', 'location', 'needs_feature', '10.1.0', 'Answers the device\'s current position (asks the user for location access).',
    obj({ type: oneOf('0: coordinates only, 1: with city, 2: with district and street', ['0', '1', '2'], { default: '0' }), cacheTimeout: int('seconds a cached fix may be old', { minimum: 0, default: 30 }) }),
    obj({ latitude: lat, longitude: lng, accuracy: num('metres'), city: str('city name (type ≥ 1)'), cityAdcode: str('administrative code'), streetNumber: obj({ street: str('street'), number: str('number') }, [], 'street and house number (type 2)') }, ['latitude', 'longitude', 'accuracy'])),
  api('openLocation', 'location', 'open', '10.1.0', 'Shows a place on the host\'s full-screen map with directions.',
    obj({ latitude: lat, longitude: lng, name: str('place name'), address: str('address'), scale: int('zoom 3–19', { minimum: 3, maximum: 19, default: 15 }) }, ['latitude', 'longitude', 'name', 'address'])),
  api('chooseLocation', 'location', 'open', '10.1.0', 'Lets the user pick a place on a map; answers its name, address and coordinates.',
    obj({ latitude: lat, longitude: lng, title: str('title of the picker') }),
    obj({ name: str('place name'), address: str('address'), latitude: lat, longitude: lng }, ['name', 'address', 'latitude', 'longitude'])),
  api('startLocationUpdate', 'location', 'restricted', '10.2.10', 'Keeps receiving position updates while the mini program is in the foreground (onLocationChange).',
    obj({ type: oneOf('coordinate system', ['wgs84', 'gcj02'], { default: 'wgs84' }) })),
  api('startLocationUpdateBackground', 'location', 'restricted', '10.2.30', 'Keeps receiving position updates in the background too (ride hailing, delivery tracking).',
    obj({ type: oneOf('coordinate system', ['wgs84', 'gcj02'], { default: 'wgs84' }) })),
  api('calculateRoute', 'location', 'needs_feature', '10.1.90', 'Plans a walking, cycling, driving or transit route between two points.',
    obj({ searchType: oneOf('mode', ['walk', 'bus', 'drive', 'ride'], { default: 'walk' }), startLat: lat, startLng: lng, endLat: lat, endLng: lng }, ['startLat', 'startLng', 'endLat', 'endLng']),
    obj({ distance: num('metres'), duration: num('seconds') }, ['distance', 'duration'])),

  // ---- device ----
  api('getSystemInfo', 'device', 'open', '10.1.0', 'Answers the device model, OS, screen size, host app version and safe area.',
    none,
    obj({
      brand: str('device brand'), model: str('device model'), system: str('OS version'), platform: oneOf('OS', ['iOS', 'Android', 'HarmonyOS']), version: str('host app version'),
      language: str('host app language'), pixelRatio: num('device pixel ratio'), screenWidth: int('px'), screenHeight: int('px'), windowWidth: int('px'), windowHeight: int('px'),
      safeArea: obj({ top: int('px'), bottom: int('px'), left: int('px'), right: int('px') }, [], 'the area not covered by notches and home indicators'),
    }, ['model', 'system', 'platform', 'version', 'screenWidth', 'screenHeight'])),
  api('getSystemInfoSync', 'device', 'open', '10.1.0', 'Synchronous form of getSystemInfo.', none,
    obj({ model: str('device model'), system: str('OS version'), platform: str('OS'), version: str('host app version') }, ['model', 'system', 'platform', 'version'])),
  api('scan', 'device', 'open', '10.1.0', 'Opens the camera to scan a QR code or barcode.',
    obj({ scanType: arr('code kinds', { type: 'string', enum: ['qrCode', 'barCode', 'dmCode', 'pdf417Code'] }), hideAlbum: bool('hide the pick-from-album entry', { default: false }) }),
    obj({ code: str('decoded content'), scanType: str('kind that was found') }, ['code'])),
  api('scanCode', 'device', 'open', '10.1.0', 'wx-compatible name of scan: opens the camera to scan a QR code or barcode.',
    obj({ onlyFromCamera: bool('no album entry', { default: false }), scanType: arr('code kinds', { type: 'string', enum: ['qrCode', 'barCode', 'datamatrix', 'pdf417'] }) }),
    obj({ result: str('decoded content'), scanType: str('kind that was found'), charSet: str('character set') }, ['result'])),
  api('vibrateShort', 'device', 'open', '10.1.0', 'Vibrates the device briefly (15 ms).', none),
  api('vibrateLong', 'device', 'open', '10.1.0', 'Vibrates the device for 400 ms.', none),
  api('makePhoneCall', 'device', 'open', '10.1.0', 'Opens the dialler with a number filled in; the user confirms the call.',
    obj({ number: str('phone number', { pattern: '^[+0-9 ()-]{3,32}$' }) }, ['number'])),
  api('setClipboard', 'device', 'open', '10.1.0', 'Puts text on the clipboard.', obj({ text: str('text to copy', { maxLength: 10000 }) }, ['text'])),
  api('setClipboardData', 'device', 'open', '10.1.0', 'wx-compatible name of setClipboard: puts text on the clipboard.', obj({ data: str('text to copy', { maxLength: 10000 }) }, ['data'])),
  api('getClipboard', 'device', 'needs_feature', '10.1.0', 'Reads the text on the clipboard (the host shows the user that it was read).', none, obj({ text: str('clipboard text') }, ['text'])),
  api('getScreenBrightness', 'device', 'open', '10.1.0', 'Answers the screen brightness.', none, obj({ brightness: num('0 to 1', { minimum: 0, maximum: 1 }) }, ['brightness'])),
  api('setScreenBrightness', 'device', 'open', '10.1.0', 'Sets the screen brightness while the mini program is shown.', obj({ brightness: num('0 to 1', { minimum: 0, maximum: 1 }) }, ['brightness'])),
  api('setKeepScreenOn', 'device', 'open', '10.1.0', 'Keeps the screen on while the mini program is shown.', obj({ keepScreenOn: bool('keep the screen on') }, ['keepScreenOn'])),
  api('getBatteryInfo', 'device', 'open', '10.1.50', 'Answers the battery level and whether the device is charging.', none, obj({ level: int('percent', { minimum: 0, maximum: 100 }), isCharging: bool('charging') }, ['level', 'isCharging'])),
  api('onAccelerometerChange', 'device', 'open', '10.1.0', 'Registers a listener for accelerometer readings (5 per second).', none, obj({ x: num('g'), y: num('g'), z: num('g') }, ['x', 'y', 'z'])),
  api('startBluetoothDevicesDiscovery', 'device', 'restricted', '10.1.50', 'Starts scanning for nearby Bluetooth Low Energy devices (needs Bluetooth access).',
    obj({ services: arr('service UUIDs to look for', { type: 'string' }), allowDuplicatesKey: bool('report a device each time it is seen', { default: false }), interval: int('ms between reports', { minimum: 0, default: 0 }) })),
  api('startSoterAuthentication', 'device', 'restricted', '10.1.60', 'Asks the user to confirm with fingerprint or face; answers a signed result the server verifies.',
    obj({ requestAuthModes: arr('allowed modes', { type: 'string', enum: ['fingerPrint', 'facial'] }, { minItems: 1 }), challenge: str('server nonce to sign', { maxLength: 512 }), authContent: str('prompt shown to the user') }, ['requestAuthModes', 'challenge']),
    obj({ authMode: str('mode used'), resultJSON: str('signed result'), resultJSONSignature: str('signature of resultJSON') }, ['authMode', 'resultJSON', 'resultJSONSignature'])),
  api('addPhoneContact', 'device', 'needs_feature', '10.1.30', 'Adds a contact card to the phone\'s address book after the user confirms.',
    obj({ firstName: str('first name'), lastName: str('last name'), mobilePhoneNumber: str('mobile number'), organization: str('company'), email: str('email', { format: 'email' }) }, ['firstName'])),

  // ---- ui ----
  api('showToast', 'ui', 'open', '10.1.0', 'Shows a short message that disappears by itself.',
    obj({ content: str('text, at most 2 lines', { maxLength: 60 }), type: oneOf('icon', ['none', 'success', 'fail', 'exception'], { default: 'none' }), duration: int('milliseconds', { minimum: 500, maximum: 10000, default: 2000 }) }, ['content'])),
  api('hideToast', 'ui', 'open', '10.1.0', 'Hides the toast now.', none),
  api('showLoading', 'ui', 'open', '10.1.0', 'Shows a loading indicator that blocks touches until hideLoading.', obj({ content: str('text under the spinner', { maxLength: 30 }), delay: int('ms before it appears', { minimum: 0, default: 0 }) })),
  api('hideLoading', 'ui', 'open', '10.1.0', 'Hides the loading indicator.', none),
  api('showModal', 'ui', 'open', '10.1.0', 'wx-compatible dialog with a title, a text and one or two buttons.',
    obj({ title: str('title'), content: str('text'), showCancel: bool('show the cancel button', { default: true }), confirmText: str('confirm label', { maxLength: 8, default: 'OK' }), cancelText: str('cancel label', { maxLength: 8, default: 'Cancel' }) }),
    obj({ confirm: bool('the user tapped confirm'), cancel: bool('the user tapped cancel') }, ['confirm', 'cancel'])),
  api('alert', 'ui', 'open', '10.1.0', 'Shows a dialog with one button.', obj({ title: str('title'), content: str('text'), buttonText: str('button label', { default: 'OK' }) })),
  api('confirm', 'ui', 'open', '10.1.0', 'Shows a dialog with confirm and cancel buttons.',
    obj({ title: str('title'), content: str('text'), confirmButtonText: str('confirm label'), cancelButtonText: str('cancel label') }), obj({ confirm: bool('the user confirmed') }, ['confirm'])),
  api('prompt', 'ui', 'open', '10.1.0', 'Shows a dialog with a text field.',
    obj({ title: str('title'), message: str('text above the field'), placeholder: str('placeholder'), okButtonText: str('ok label'), cancelButtonText: str('cancel label') }),
    obj({ ok: bool('the user tapped ok'), inputValue: str('what the user typed') }, ['ok'])),
  api('showActionSheet', 'ui', 'open', '10.1.0', 'Shows a list of actions sliding up from the bottom.',
    obj({ title: str('title'), items: arr('action labels', { type: 'string' }, { minItems: 1, maxItems: 6 }), cancelButtonText: str('cancel label'), destructiveBtnIndex: int('index shown in red', { minimum: 0 }) }, ['items']),
    obj({ index: int('index tapped, -1 when cancelled') }, ['index'])),
  api('setNavigationBar', 'ui', 'open', '10.1.0', 'Sets the title and colours of the current page\'s navigation bar.',
    obj({ title: str('title', { maxLength: 30 }), backgroundColor: color('background colour'), borderBottomColor: color('bottom border colour'), frontColor: oneOf('text and icon colour', ['#000000', '#ffffff']) })),
  api('setNavigationBarTitle', 'ui', 'open', '10.1.0', 'wx-compatible: sets the navigation bar title.', obj({ title: str('title', { maxLength: 30 }) }, ['title'])),
  api('showNavigationBarLoading', 'ui', 'open', '10.1.0', 'Shows a spinner in the navigation bar.', none),
  api('setTabBarBadge', 'ui', 'open', '10.1.0', 'Puts a text badge on a tab bar item.', obj({ index: int('tab index', { minimum: 0, maximum: 4 }), text: str('badge text', { maxLength: 4 }) }, ['index', 'text'])),
  api('startPullDownRefresh', 'ui', 'open', '10.1.0', 'Starts the page\'s pull-down refresh animation (onPullDownRefresh fires).', none),
  api('stopPullDownRefresh', 'ui', 'open', '10.1.0', 'Ends the pull-down refresh animation.', none),
  api('pageScrollTo', 'ui', 'open', '10.1.0', 'Scrolls the page to a position or an element.', obj({ scrollTop: int('px from the top', { minimum: 0 }), selector: str('CSS selector of the target element'), duration: int('ms', { minimum: 0, default: 300 }) })),
  api('createAnimation', 'ui', 'open', '10.1.0', 'Creates an animation description to export to a view\'s animation attribute.',
    obj({ duration: int('ms', { minimum: 0, default: 400 }), timingFunction: oneOf('easing', ['linear', 'ease', 'ease-in', 'ease-in-out', 'ease-out', 'step-start', 'step-end'], { default: 'linear' }), delay: int('ms', { minimum: 0, default: 0 }) }),
    obj({ animationId: str('handle of the animation') }, ['animationId'])),
  api('createSelectorQuery', 'ui', 'open', '10.1.0', 'Queries the layout of elements on the page (size, position, scroll offset).', none, obj({ queryId: str('handle of the query') }, ['queryId'])),

  // ---- navigation ----
  api('navigateTo', 'navigation', 'open', '10.1.0', 'Opens a page of the app on top of the current one (at most 10 deep).', obj({ url: pageUrl }, ['url'])),
  api('redirectTo', 'navigation', 'open', '10.1.0', 'Replaces the current page with another page of the app.', obj({ url: pageUrl }, ['url'])),
  api('navigateBack', 'navigation', 'open', '10.1.0', 'Closes pages and goes back.', obj({ delta: int('pages to go back', { minimum: 1, default: 1 }) })),
  api('switchTab', 'navigation', 'open', '10.1.0', 'Goes to a tab bar page, closing the other pages.', obj({ url: str('path of a tab bar page, without a query') }, ['url'])),
  api('reLaunch', 'navigation', 'open', '10.1.0', 'Closes every page and opens the given one.', obj({ url: pageUrl }, ['url'])),
  api('navigateToMiniProgram', 'navigation', 'needs_feature', '10.1.10', 'Opens another mini program (the user confirms), passing extra data to it.',
    obj({ appId: str('mini program id to open', { pattern: '^[0-9A-Za-z_]{4,64}$' }), path: str('page to open'), extraData: { type: 'object', description: 'passed to the target\'s onLaunch' }, envVersion: oneOf('which build', ['release', 'trial', 'develop'], { default: 'release' }) }, ['appId'])),
  api('navigateBackMiniProgram', 'navigation', 'open', '10.1.10', 'Goes back to the mini program that opened this one.', obj({ extraData: { type: 'object', description: 'passed back to the caller' } })),
  api('exitMiniProgram', 'navigation', 'restricted', '10.1.40', 'Closes the mini program.', none),
  api('openUrl', 'navigation', 'restricted', '10.1.30', 'Opens a web page on an allowed web-view domain in the host\'s browser view.', obj({ url: str('https URL on an allowed web-view domain', { format: 'uri' }) }, ['url'])),
  api('openSetting', 'navigation', 'open', '10.1.0', 'Opens the settings page where the user sees and changes the permissions given to the mini program.', none,
    obj({ authSetting: { type: 'object', description: 'scope → granted', additionalProperties: { type: 'boolean' } } }, ['authSetting'])),

  // ---- payment ----
  api('tradePay', 'payment', 'restricted', '10.1.0', 'Starts the host\'s cashier for a trade created server-side; answers the result code.',
    obj({ tradeNO: str('trade number from the merchant server\'s create call', { maxLength: 64 }), orderStr: str('signed order string (alternative to tradeNO)') }),
    obj({ resultCode: oneOf('9000 paid, 8000 processing, 4000 failed, 6001 cancelled, 6002 network error', ['9000', '8000', '4000', '5000', '6001', '6002', '6004']), result: str('raw result') }, ['resultCode'])),
  api('requestPayment', 'payment', 'restricted', '10.1.0', 'wx-compatible payment: pays a prepaid order with a server-side signature.',
    obj({ timeStamp: str('seconds since the epoch, as text'), nonceStr: str('random string', { maxLength: 32 }), package: str('prepay_id=…'), signType: oneOf('signature algorithm', ['RSA', 'HMAC-SHA256', 'MD5'], { default: 'RSA' }), paySign: str('signature') }, ['timeStamp', 'nonceStr', 'package', 'paySign'])),
  api('signContract', 'payment', 'restricted', '10.1.60', 'Lets the user sign a withhold (recurring payment) agreement.', obj({ signStr: str('signed agreement string') }, ['signStr']), obj({ resultStatus: str('7000 signed, 6001 cancelled') }, ['resultStatus'])),
  api('paySignCenter', 'payment', 'restricted', '10.1.60', 'Opens the page where the user manages their payment agreements.', obj({ signStr: str('signed query string') }, ['signStr'])),
  api('getPaymentCode', 'payment', 'restricted', '10.2.0', 'Shows the user\'s in-store payment code (barcode and QR).', none, obj({ shown: bool('the code was shown') }, ['shown'])),
  api('addCardAuth', 'payment', 'restricted', '10.1.70', 'Adds a membership card to the user\'s card wallet.', obj({ url: str('signed card template URL', { format: 'uri' }) }, ['url']), obj({ success: bool('the card was added'), resultStatus: str('status code') }, ['success'])),

  // ---- user_info ----
  api('getAuthCode', 'user_info', 'open', '10.1.0', 'Gets a one-time authorization code the merchant server exchanges for the user\'s id and an access token.',
    obj({ scopes: arr('auth_base (silent) or auth_user (asks the user)', { type: 'string', enum: ['auth_base', 'auth_user', 'auth_zhima'] }, { default: ['auth_base'] }) }),
    obj({ authCode: str('one-time code, valid 3 minutes'), authErrorScopes: { type: 'object', description: 'scopes the user refused' }, authSuccessScopes: arr('scopes granted', { type: 'string' }) }, ['authCode'])),
  api('login', 'user_info', 'open', '10.1.0', 'wx-compatible: gets a one-time login code for the merchant server.', obj({ timeout: int('ms', { minimum: 1 }) }), obj({ code: str('one-time code') }, ['code'])),
  api('checkSession', 'user_info', 'open', '10.1.0', 'Checks whether the login session from login is still valid.', none),
  api('getOpenUserInfo', 'user_info', 'needs_feature', '10.1.20', 'Answers the user\'s nickname, avatar and region after the user agrees.',
    none, obj({ response: str('JSON text: { nickName, avatar, gender, countryCode, province, city }') }, ['response'])),
  api('getUserInfo', 'user_info', 'needs_feature', '10.1.0', 'Former way to read the user\'s nickname and avatar; use getOpenUserInfo.',
    none, obj({ nickName: str('nickname'), avatar: str('avatar URL') }), 'deprecated'),
  api('getPhoneNumber', 'user_info', 'restricted', '10.1.30', 'Answers the user\'s phone number, encrypted for the merchant server, after the user agrees.',
    none, obj({ response: str('encrypted payload; the server decrypts it with the mini program\'s AES key'), sign: str('signature of response') }, ['response'])),
  api('getAddress', 'user_info', 'needs_feature', '10.1.0', 'Lets the user pick one of their saved delivery addresses.',
    none, obj({ fullname: str('recipient'), mobilePhone: str('phone'), prov: str('province / state'), city: str('city'), area: str('district'), address: str('street address'), postcode: str('postal code') }, ['fullname', 'address'])),
  api('getSetting', 'user_info', 'open', '10.1.0', 'Answers which permissions the user gave the mini program.',
    none, obj({ authSetting: { type: 'object', description: 'scope → granted (location, camera, album, userInfo…)', additionalProperties: { type: 'boolean' } } }, ['authSetting'])),
  api('getRunData', 'user_info', 'restricted', '10.1.50', 'Answers the user\'s step count for the last 30 days, encrypted for the merchant server.',
    none, obj({ response: str('encrypted payload'), sign: str('signature') }, ['response'])),
  api('getIdentityVerification', 'user_info', 'restricted', '10.2.10', 'Runs the host\'s real-name (KYC) face verification and answers a certificate id for the server.',
    obj({ bizId: str('verification id from the merchant server', { maxLength: 64 }) }, ['bizId']), obj({ certifyId: str('certificate id'), passed: bool('verification passed') }, ['certifyId', 'passed'])),
  api('getTaobaoNick', 'user_info', 'restricted', '9.0.0', 'Legacy partner API that answered a partner account nickname; switched off.', none, obj({ nick: str('nickname') }), 'disabled'),
];

/**
 * Checks that a value is a JSON Schema object of the kind the catalog uses for params and results:
 * `{ type: 'object', properties: {…} }` at the root, known keywords only, types from the JSON
 * Schema set, `required` naming declared properties, at most 8 levels and 20 KB.
 * Answers null when it is fine, else where and what is wrong.
 */
export function checkJsonSchema(value: unknown): { path: string; message: string } | null {
  if (!isPlainObject(value)) return { path: '', message: 'must be a JSON Schema object' };
  if (value.type !== 'object') return { path: 'type', message: 'the root schema must have type "object"' };
  if (!isPlainObject(value.properties)) return { path: 'properties', message: 'the root schema must list its properties (may be empty: {})' };
  let size: number;
  try {
    size = JSON.stringify(value).length;
  } catch {
    return { path: '', message: 'must be plain JSON' };
  }
  if (size > maxSchemaBytes) return { path: '', message: `at most ${maxSchemaBytes.toLocaleString('en')} characters of JSON` };
  return checkNode(value, '', 0);
}

const known = new Set([
  'type', 'title', 'description', 'properties', 'required', 'items', 'enum', 'const', 'default', 'examples', 'format', 'pattern',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'additionalProperties',
]);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkNode(node: unknown, path: string, depth: number): { path: string; message: string } | null {
  const at = (k: string) => (path ? `${path}.${k}` : k);
  if (!isPlainObject(node)) return { path, message: 'must be a schema object' };
  if (depth > maxSchemaDepth) return { path, message: `nested deeper than ${maxSchemaDepth} levels` };
  for (const k of Object.keys(node)) if (!known.has(k)) return { path: at(k), message: `unknown keyword "${k}"` };
  const { type } = node;
  const types = Array.isArray(type) ? type : type === undefined ? [] : [type];
  if (Array.isArray(type) && type.length === 0) return { path: at('type'), message: 'must name at least one type' };
  for (const t of types) if (typeof t !== 'string' || !jsonTypes.includes(t)) return { path: at('type'), message: `unknown type ${JSON.stringify(t)}; use ${jsonTypes.join(', ')}` };
  for (const k of ['title', 'description', 'format', 'pattern'] as const) {
    if (node[k] !== undefined && typeof node[k] !== 'string') return { path: at(k), message: 'must be a string' };
  }
  if (typeof node.description === 'string' && node.description.length > 2000) return { path: at('description'), message: 'at most 2000 characters' };
  if (typeof node.pattern === 'string') {
    try {
      new RegExp(node.pattern);
    } catch {
      return { path: at('pattern'), message: 'is not a valid regular expression' };
    }
  }
  for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] as const) {
    if (node[k] !== undefined && typeof node[k] !== 'number') return { path: at(k), message: 'must be a number' };
  }
  for (const k of ['minLength', 'maxLength', 'minItems', 'maxItems'] as const) {
    if (node[k] !== undefined && !(Number.isInteger(node[k]) && (node[k] as number) >= 0)) return { path: at(k), message: 'must be a whole number ≥ 0' };
  }
  if (node.enum !== undefined) {
    if (!Array.isArray(node.enum) || node.enum.length === 0) return { path: at('enum'), message: 'must be a non-empty list' };
    if (node.enum.some((v) => v !== null && !['string', 'number', 'boolean'].includes(typeof v))) return { path: at('enum'), message: 'values must be strings, numbers, booleans or null' };
  }
  if (node.examples !== undefined && !Array.isArray(node.examples)) return { path: at('examples'), message: 'must be a list' };
  if (node.properties !== undefined) {
    if (!isPlainObject(node.properties)) return { path: at('properties'), message: 'must map property names to schemas' };
    if (types.length && !types.includes('object')) return { path: at('properties'), message: 'only an object schema has properties' };
    for (const [name, child] of Object.entries(node.properties)) {
      if (!name || name.length > 100) return { path: at('properties'), message: 'property names are 1 to 100 characters' };
      const err = checkNode(child, at(`properties.${name}`), depth + 1);
      if (err) return err;
    }
  }
  if (node.required !== undefined) {
    if (!Array.isArray(node.required) || node.required.some((r) => typeof r !== 'string')) return { path: at('required'), message: 'must be a list of property names' };
    const props = isPlainObject(node.properties) ? node.properties : {};
    const unknownName = node.required.find((r) => !(r in props));
    if (unknownName !== undefined) return { path: at('required'), message: `names "${unknownName}", which is not among the properties` };
    if (new Set(node.required).size !== node.required.length) return { path: at('required'), message: 'names a property twice' };
  }
  if (node.items !== undefined) {
    if (types.length && !types.includes('array')) return { path: at('items'), message: 'only an array schema has items' };
    const err = checkNode(node.items, at('items'), depth + 1);
    if (err) return err;
  }
  if (node.additionalProperties !== undefined && typeof node.additionalProperties !== 'boolean') {
    const err = checkNode(node.additionalProperties, at('additionalProperties'), depth + 1);
    if (err) return err;
  }
  return null;
}
