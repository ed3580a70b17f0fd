/** Where progress goes: stderr, or anything with the same shape (tests). */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

const WIDTH = 20;

/** `1.2/2.3 MB`, or `45/98 kB` below a megabyte: both sides in the unit of the total. */
export function formatAmount(done: number, total: number): string {
  const [div, unit] = total >= 1e6 ? [1e6, 'MB'] : [1e3, 'kB'];
  const f = (n: number) => (n / div).toFixed(total >= 1e6 || total < 1e4 ? 1 : 0);
  return `${f(done)}/${f(total)} ${unit}`;
}

/**
 * Upload progress on stderr. On a terminal one line is redrawn in place:
 * `Uploading  [██████████░░░░░░░░░░]  52%  1.2/2.3 MB`; elsewhere (CI logs, pipes) a plain line is
 * written when each quarter is reached, so a log gets a few lines rather than hundreds.
 */
export class ProgressBar {
  private last = '';
  private nextQuarter = 0;
  private open = false;

  constructor(
    private readonly total: number,
    private readonly out: ProgressStream = process.stderr,
    private readonly label = 'Uploading',
  ) {}

  /** Report `done` of `total` bytes sent. */
  update(done: number): void {
    const ratio = this.total > 0 ? Math.min(1, done / this.total) : 1;
    // Floor, so 100% means every byte went out.
    const pct = Math.floor(ratio * 100);
    const amount = formatAmount(Math.min(done, this.total), this.total);
    if (this.out.isTTY) {
      const filled = Math.floor(ratio * WIDTH);
      const line = `${this.label}  [${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}]  ${String(pct).padStart(3)}%  ${amount}`;
      if (line === this.last) return;
      this.last = line;
      this.open = true;
      this.out.write(`\r${line}\x1b[K`);
    } else if (pct >= this.nextQuarter) {
      this.out.write(`${this.label}  ${String(pct).padStart(3)}%  ${amount}\n`);
      this.nextQuarter = Math.floor(pct / 25) * 25 + 25;
    }
  }

  /** Ends the redrawn line (call once, whether the upload finished or failed). */
  done(): void {
    if (this.open) this.out.write('\n');
    this.open = false;
  }
}
