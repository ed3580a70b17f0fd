import {
  BarController, BarElement, CategoryScale, Chart, Filler, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip,
} from 'chart.js';

/**
 * chart.js with only what the console draws (line and bar charts), registered once, with
 * defaults from the console's design tokens (app.css).
 */
Chart.register(LineController, LineElement, PointElement, BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend, Filler);

function token(name: string, fallback: string): string {
  if (typeof document === 'undefined') return fallback;
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

Chart.defaults.font.family = token('--font', 'system-ui, sans-serif');
Chart.defaults.font.size = 12;
Chart.defaults.color = token('--muted', '#6b7489');
Chart.defaults.borderColor = token('--border', '#e3e6ee');
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.plugins.legend.labels.boxWidth = 10;
Chart.defaults.plugins.legend.labels.boxHeight = 10;
Chart.defaults.plugins.legend.labels.useBorderRadius = true;
Chart.defaults.plugins.legend.labels.borderRadius = 3;
Chart.defaults.plugins.tooltip.backgroundColor = token('--text', '#171c2b');
Chart.defaults.plugins.tooltip.padding = 10;
Chart.defaults.plugins.tooltip.cornerRadius = 8;
Chart.defaults.plugins.tooltip.boxPadding = 4;

/** Series colours: the primary first, then hues that stay apart for colour-blind readers. */
export const palette = [token('--primary', '#4f46e5'), '#0ea5e9', '#f59e0b', '#10b981', '#db2777', '#64748b', '#8b5cf6', '#84cc16'];

/** A colour with an alpha, for fills. */
export function alpha(hex: string, a: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) return hex;
  const n = parseInt(m[1]!, 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

export { Chart };

/** A line chart's series: one line over the shared labels (days); `fill` shades under it. */
export interface LineSeries {
  label: string;
  data: (number | null)[];
  color?: string;
  fill?: boolean;
  dashed?: boolean;
}

/** A bar chart's series: one colour of bars over the shared labels. */
export interface BarSeries {
  label: string;
  data: (number | null)[];
  color?: string;
}
