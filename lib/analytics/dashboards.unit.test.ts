import { describe, expect, it } from 'vitest';
import { csvCell, formatCsv, parseCsv } from '../csv.js';
import { daysOf, rangeDays, weekStart } from './dashboards.js';

describe('dashboard days', () => {
  it('finds the Monday of the ISO week, across month and year ends', () => {
    expect(weekStart('2026-12-07')).toBe('2026-12-07'); // a Monday
    expect(weekStart('2026-12-13')).toBe('2026-12-07'); // the Sunday after
    expect(weekStart('2026-01-01')).toBe('2025-12-29'); // a Thursday
    expect(weekStart('2020-03-01')).toBe('2020-02-24'); // leap year
  });

  it('lists every day of an inclusive range', () => {
    expect(daysOf('2024-02-27', '2024-03-01')).toEqual(['2024-02-27', '2024-02-28', '2024-02-29', '2024-03-01']);
    expect(daysOf('2026-01-01', '2026-01-01')).toEqual(['2026-01-01']);
    expect(rangeDays('2025-01-01', '2026-01-01')).toBe(366);
  });
});

describe('CSV writing', () => {
  it('quotes what needs it, defuses formulas, writes numbers and empty nulls, and reads back', () => {
    expect(csvCell('pages/a,b')).toBe('"pages/a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('=HYPERLINK("x")')).toBe('"\'=HYPERLINK(""x"")"');
    expect(csvCell(null)).toBe('');
    expect(csvCell(0.25)).toBe('0.25');
    const text = formatCsv(['page', 'views'], [['pages/x', 3], ['a\nb', null]]);
    expect(text).toBe('page,views\r\npages/x,3\r\n"a\nb",\r\n');
    expect(parseCsv(text).map((r) => r.fields)).toEqual([['page', 'views'], ['pages/x', '3'], ['a\nb', '']]);
  });
});
