/** The console's toasts: short messages in the corner, errors stay until dismissed or replaced. */
export type ToastKind = 'error' | 'success' | 'info';

export interface Toast {
  id: number;
  kind: ToastKind;
  title: string;
  message: string;
  detail?: string;
}

let nextId = 1;
const timers = new Map<number, ReturnType<typeof setTimeout>>();

class Toasts {
  items = $state<Toast[]>([]);

  show(kind: ToastKind, title: string, message: string, detail?: string): number {
    const id = nextId++;
    // The same message twice in a row (e.g. a retry) replaces the first one.
    const same = this.items.find((t) => t.kind === kind && t.message === message);
    if (same) this.dismiss(same.id);
    this.items = [...this.items.slice(-3), { id, kind, title, message, detail }];
    timers.set(id, setTimeout(() => this.dismiss(id), kind === 'error' ? 9000 : 4000));
    return id;
  }

  success(message: string, title = 'Done'): number {
    return this.show('success', title, message);
  }

  info(message: string, title = 'Note'): number {
    return this.show('info', title, message);
  }

  error(message: string, detail?: string, title = 'Something went wrong'): number {
    return this.show('error', title, message, detail);
  }

  dismiss(id: number): void {
    clearTimeout(timers.get(id));
    timers.delete(id);
    this.items = this.items.filter((t) => t.id !== id);
  }
}

export const toasts = new Toasts();
