import { describe, expect, it } from 'vitest';
import { CsvError, normalizeEmail, parseCsv, planTesterImport, readTesterCsv } from './csv.js';

describe('parseCsv', () => {
  it('reads quoted fields, doubled quotes, embedded newlines, CRLF and a BOM, with the line each record starts on', () => {
    const text = '\uFEFFemail,mini program\r\n"a@x.io","Shop, the ""best"""\r\n\r\nb@x.io,"two\nlines"\nc@x.io\n';
    expect(parseCsv(text)).toEqual([
      { line: 1, fields: ['email', 'mini program'] },
      { line: 2, fields: ['a@x.io', 'Shop, the "best"'] },
      { line: 4, fields: ['b@x.io', 'two\nlines'] },
      { line: 6, fields: ['c@x.io'] },
    ]);
  });

  it('throws on an unterminated quote, naming its line', () => {
    expect(() => parseCsv('a@x.io\n"b@x.io,shop\n')).toThrow(CsvError);
    try {
      parseCsv('a@x.io\n"b@x.io,shop\n');
    } catch (err) {
      expect((err as CsvError).line).toBe(2);
    }
  });

  it('keeps empty fields', () => {
    expect(parseCsv('a,,b\n,')).toEqual([{ line: 1, fields: ['a', '', 'b'] }, { line: 2, fields: ['', ''] }]);
  });
});

describe('normalizeEmail', () => {
  it('lowercases and trims good addresses and refuses bad ones', () => {
    expect(normalizeEmail('  Ann.Lee+qa@Example.COM ')).toBe('ann.lee+qa@example.com');
    for (const bad of ['', 'ann', 'ann@', '@x.io', 'ann@x', 'a b@x.io', 'ann@@x.io', 'ann@-x.io', `${'a'.repeat(250)}@x.io`]) expect(normalizeEmail(bad)).toBeNull();
  });
});

describe('tester import plan', () => {
  const mps = [{ id: 'mp_1', name: 'Harbour Mall' }, { id: 'mp_2', name: 'Twin' }, { id: 'mp_3', name: 'twin' }];

  it('detects a header, keeps row numbers, and decides each row with a reason', () => {
    const csv = [
      'Email,Mini program',
      'ann@x.io',
      'BOB@x.io,harbour mall',
      'bob@x.io,mp_1',
      'not-an-email',
      'cy@x.io,Nowhere',
      'ann@x.io',
      'dee@x.io,Twin',
      'eve@x.io,mp_1,extra',
      ',',
    ].join('\n');
    const read = readTesterCsv(csv);
    expect(read.header).toBe(true);
    const plan = planTesterImport(read.rows, mps, { extraColumns: read.extraColumns });
    expect(plan.add).toEqual([
      { row: 2, email: 'ann@x.io', miniProgramId: null },
      { row: 3, email: 'bob@x.io', miniProgramId: 'mp_1' },
    ]);
    expect(plan.refused.map((r) => [r.row, r.code])).toEqual([
      [4, 'duplicate_in_file'],
      [5, 'bad_email'],
      [6, 'unknown_mini_program'],
      [7, 'duplicate_in_file'],
      [8, 'unknown_mini_program'],
      [9, 'too_many_columns'],
      [10, 'bad_email'],
    ]);
    expect(plan.refused[0]!.reason).toBe('Duplicate of row 3');
    expect(plan.refused[4]!.reason).toMatch(/Several mini programs/);
  });

  it('reads a file without a header and applies the default mini program to rows without one', () => {
    const read = readTesterCsv('a@x.io\nb@x.io,mp_2\n');
    expect(read.header).toBe(false);
    const plan = planTesterImport(read.rows, mps, { defaultMiniProgramId: 'mp_1' });
    expect(plan.add).toEqual([{ row: 1, email: 'a@x.io', miniProgramId: 'mp_1' }, { row: 2, email: 'b@x.io', miniProgramId: 'mp_2' }]);
    expect(plan.refused).toEqual([]);
  });

  it('treats the same address for the workspace and for one mini program as two testers', () => {
    const plan = planTesterImport(readTesterCsv('a@x.io\na@x.io,mp_1').rows, mps);
    expect(plan.add).toHaveLength(2);
  });
});
