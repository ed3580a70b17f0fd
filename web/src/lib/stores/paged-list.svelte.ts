import { errorMessage, handleError } from '$lib/utils/errors';

/** One page of a list as the API answers it: its rows and the cursor of the next page, if any. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface PagedListOptions<T, P extends Page<T>> {
  /** Fetches the first page (cursor null) or the page after `cursor`, with the page's current filters. */
  fetchPage: (cursor: string | null) => Promise<P>;
  /** A row's identity: rows already shown are not appended twice. */
  keyOf: (item: T) => string;
  /** The toast title of a failed load. */
  errorTitle: string;
  /** The toast title of a failed "Load more". */
  moreErrorTitle?: string;
  /**
   * When a failed load raises a toast on top of `loadError`: after the first successful load
   * (default), only while rows are shown, or never (the page shows every load error in place).
   */
  toast?: 'after-first-load' | 'with-rows' | 'never';
  /** Called with every page kept (not with a stale one); `replaced` is true for `load()`, false for `loadMore()`. */
  onPage?: (page: P, replaced: boolean) => void;
}

/**
 * A console list loaded page by page: `load()` (re)fetches the first page with the current
 * filters, `loadMore()` appends the next one. Each load starts a new generation, so an answer to
 * an older load or to a "Load more" issued before it is dropped (typing fast fires many loads).
 */
export class PagedList<T, P extends Page<T> = Page<T>> {
  items = $state<T[]>([]);
  nextCursor = $state<string | null>(null);
  loading = $state(true);
  loadedOnce = $state(false);
  loadingMore = $state(false);
  loadError = $state<string | null>(null);

  #generation = 0;
  readonly #opts: PagedListOptions<T, P>;

  constructor(opts: PagedListOptions<T, P>) {
    this.#opts = opts;
  }

  async load(): Promise<void> {
    const gen = ++this.#generation;
    this.loading = true;
    this.loadError = null;
    try {
      const page = await this.#opts.fetchPage(null);
      if (gen !== this.#generation) return;
      this.items = page.items;
      this.nextCursor = page.nextCursor;
      this.loadedOnce = true;
      this.#opts.onPage?.(page, true);
    } catch (err) {
      if (gen !== this.#generation) return;
      const toast = this.#toastOnError();
      this.loadError = errorMessage(err);
      handleError(err, this.#opts.errorTitle, { toast });
    } finally {
      if (gen === this.#generation) this.loading = false;
    }
  }

  async loadMore(): Promise<void> {
    if (!this.nextCursor || this.loadingMore) return;
    this.loadingMore = true;
    const gen = this.#generation;
    try {
      const page = await this.#opts.fetchPage(this.nextCursor);
      if (gen !== this.#generation) return;
      const { keyOf } = this.#opts;
      const seen = new Set(this.items.map((i) => keyOf(i)));
      this.items = [...this.items, ...page.items.filter((i) => !seen.has(keyOf(i)))];
      this.nextCursor = page.nextCursor;
      this.#opts.onPage?.(page, false);
    } catch (err) {
      handleError(err, this.#opts.moreErrorTitle ?? 'Could not load more');
    } finally {
      this.loadingMore = false;
    }
  }

  #toastOnError(): boolean {
    switch (this.#opts.toast ?? 'after-first-load') {
      case 'after-first-load':
        return this.loadedOnce;
      case 'with-rows':
        return this.items.length > 0;
      case 'never':
        return false;
    }
  }
}
