/**
 * CSV reading (RFC 4180: quoted fields, doubled quotes, CRLF or LF, a BOM) and the plan of a
 * tester import: which rows to add and which to refuse, and why. Pure (no I/O).
 */

export interface CsvRecord {
  /** Line of the file the record starts on (1-based), as a spreadsheet numbers rows. */
  line: number;
  fields: string[];
}

export class CsvError extends Error {
  constructor(message: string, public readonly line: number) {
    super(message);
    this.name = 'CsvError';
  }
}

/** Splits CSV text into records. Blank lines are skipped; an unterminated quote throws. */
export function parseCsv(text: string, o: { delimiter?: string } = {}): CsvRecord[] {
  const delimiter = o.delimiter ?? ',';
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const out: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let start = 1;
  let quoted = false;
  let quoteLine = 0;
  let touched = false;
  const endRecord = () => {
    fields.push(field);
    if (touched || fields.length > 1 || fields[0] !== '') out.push({ line: start, fields });
    fields = [];
    field = '';
    touched = false;
  };
  for (let i = 0; i < src.length; i++) {
    const ch = src[i]!;
    if (quoted) {
      if (ch === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"' && field.trim() === '') {
      quoted = true;
      quoteLine = line;
      touched = true;
      field = '';
    } else if (ch === delimiter) {
      fields.push(field);
      field = '';
      touched = true;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && src[i + 1] === '\n') i++;
      endRecord();
      line++;
      start = line;
    } else {
      field += ch;
    }
  }
  if (quoted) throw new CsvError(`Unterminated quoted field starting on line ${quoteLine}`, quoteLine);
  endRecord();
  return out;
}

/** A plain, practical address check: one @, no spaces, a dotted domain, at most 254 characters. */
const emailPattern = /^[^\s@"(),:;<>[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** Trimmed and lowercased, or null when it is not an email address. */
export function normalizeEmail(raw: string): string | null {
  const email = raw.trim().toLowerCase();
  if (email.length > 254 || !emailPattern.test(email)) return null;
  return email;
}

export type RefusalCode = 'bad_email' | 'unknown_mini_program' | 'duplicate_in_file' | 'too_many_columns' | 'unknown_account';

export interface ImportRow {
  row: number;
  email: string;
  /** The mini program the row names (id or name), as written. */
  miniProgramRef: string | null;
}

export interface PlannedAdd {
  row: number;
  email: string;
  miniProgramId: string | null;
}

export interface PlannedRefusal {
  row: number;
  email: string;
  miniProgramRef: string | null;
  code: RefusalCode;
  reason: string;
}

const headerNames = new Set(['email', 'e-mail', 'email address', 'mail']);

/**
 * The rows of a tester CSV: `email[, mini program id or name]`, with or without a header line
 * (recognised by its first cell being "email").
 */
export function readTesterCsv(text: string): { header: boolean; rows: ImportRow[]; extraColumns: number[] } {
  const records = parseCsv(text);
  const first = records[0];
  const header = !!first && headerNames.has((first.fields[0] ?? '').trim().toLowerCase());
  const body = header ? records.slice(1) : records;
  const extraColumns: number[] = [];
  const rows = body.map((r) => {
    const extra = r.fields.slice(2).some((f) => f.trim() !== '');
    if (extra) extraColumns.push(r.line);
    const ref = (r.fields[1] ?? '').trim();
    return { row: r.line, email: (r.fields[0] ?? '').trim(), miniProgramRef: ref === '' ? null : ref };
  });
  return { header, rows, extraColumns };
}

/**
 * Decides each row: a bad address, a mini program the workspace does not have, a row that
 * repeats an earlier one (same address and scope), or extra columns are refused; the rest are
 * to be added. A row without a mini program takes `defaultMiniProgramId` (null: the whole
 * workspace). Mini programs are matched by id, then by name (case-insensitive).
 */
export function planTesterImport(
  rows: ImportRow[],
  miniPrograms: readonly { id: string; name: string }[],
  o: { defaultMiniProgramId?: string | null; extraColumns?: readonly number[] } = {},
): { add: PlannedAdd[]; refused: PlannedRefusal[] } {
  const byId = new Map(miniPrograms.map((m) => [m.id, m.id]));
  const byName = new Map<string, string | null>();
  for (const m of miniPrograms) {
    const key = m.name.trim().toLowerCase();
    // Two mini programs with one name: the name alone cannot say which.
    byName.set(key, byName.has(key) ? null : m.id);
  }
  const extra = new Set(o.extraColumns ?? []);
  const seen = new Map<string, number>();
  const add: PlannedAdd[] = [];
  const refused: PlannedRefusal[] = [];
  for (const r of rows) {
    const refuse = (code: RefusalCode, reason: string) => refused.push({ row: r.row, email: r.email, miniProgramRef: r.miniProgramRef, code, reason });
    if (extra.has(r.row)) {
      refuse('too_many_columns', 'Too many columns: expected email and, optionally, a mini program');
      continue;
    }
    const email = normalizeEmail(r.email);
    if (!email) {
      refuse('bad_email', r.email === '' ? 'No email address' : 'Not a valid email address');
      continue;
    }
    let miniProgramId: string | null = o.defaultMiniProgramId ?? null;
    if (r.miniProgramRef !== null) {
      const byRef = byId.get(r.miniProgramRef) ?? byName.get(r.miniProgramRef.toLowerCase());
      if (!byRef) {
        refuse('unknown_mini_program', byName.get(r.miniProgramRef.toLowerCase()) === null
          ? `Several mini programs are named "${r.miniProgramRef}"; use its id`
          : `No mini program "${r.miniProgramRef}" in this workspace`);
        continue;
      }
      miniProgramId = byRef;
    }
    const key = `${miniProgramId ?? ''}\n${email}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      refuse('duplicate_in_file', `Duplicate of row ${earlier}`);
      continue;
    }
    seen.set(key, r.row);
    add.push({ row: r.row, email, miniProgramId });
  }
  return { add, refused };
}

/**
 * One CSV cell (RFC 4180 quoting). Text that a spreadsheet would run as a formula (=, +, -, @,
 * tab, CR first) is prefixed with a quote; numbers are written as they are.
 */
export function csvCell(v: unknown): string {
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A CSV file: a header line, then one line per row (CRLF, with a final CRLF). */
export function formatCsv(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return `${[header.map(csvCell).join(','), ...rows.map((r) => r.map(csvCell).join(','))].join('\r\n')}\r\n`;
}
