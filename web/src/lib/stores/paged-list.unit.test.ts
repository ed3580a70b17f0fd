import { beforeEach, describe, expect, it, vi } from 'vitest';
import { handleError } from '$lib/utils/errors';
import { PagedList, type Page, type PagedListOptions } from './paged-list.svelte';

// The real handler imports SvelteKit's $app modules (navigation on a lost session), which only
// exist inside the kit: replace it with a spy that records whether a toast was asked for.
vi.mock('$lib/utils/errors', () => ({
  errorMessage: (err: unknown) => (err instanceof Error ? err.message : 'Unexpected error'),
  handleError: vi.fn(),
}));

interface Row {
  id: string;
}

interface Call {
  cursor: string | null;
  resolve: (page: Page<Row>) => void;
  reject: (err: unknown) => void;
}

/** A list whose fetches wait until the test answers them, in any order. */
function setup(opts: Partial<PagedListOptions<Row, Page<Row>>> = {}) {
  const calls: Call[] = [];
  const list = new PagedList<Row>({
    fetchPage: (cursor) => new Promise<Page<Row>>((resolve, reject) => calls.push({ cursor, resolve, reject })),
    keyOf: (r) => r.id,
    errorTitle: 'Could not load rows',
    ...opts,
  });
  return { list, calls };
}

const rows = (...ids: string[]): Row[] => ids.map((id) => ({ id }));
const ids = (list: PagedList<Row>) => list.items.map((r) => r.id);

beforeEach(() => vi.mocked(handleError).mockClear());

describe('PagedList', () => {
  it('starts loading, then shows the first page', async () => {
    const { list, calls } = setup();
    expect(list.loading).toBe(true);
    expect(list.loadedOnce).toBe(false);
    const done = list.load();
    expect(calls[0].cursor).toBeNull();
    calls[0].resolve({ items: rows('a', 'b'), nextCursor: 'c1' });
    await done;
    expect(ids(list)).toEqual(['a', 'b']);
    expect(list.nextCursor).toBe('c1');
    expect(list.loading).toBe(false);
    expect(list.loadedOnce).toBe(true);
  });

  it('drops the answer (or the failure) of a load that a newer load overtook', async () => {
    const onPage = vi.fn();
    const { list, calls } = setup({ onPage });
    const first = list.load();
    const second = list.load();
    calls[1].resolve({ items: rows('new'), nextCursor: null });
    await second;
    expect(list.loading).toBe(false);
    calls[0].resolve({ items: rows('old'), nextCursor: 'stale' });
    await first;
    expect(ids(list)).toEqual(['new']);
    expect(list.nextCursor).toBeNull();
    expect(onPage).toHaveBeenCalledTimes(1);

    const third = list.load();
    const fourth = list.load();
    calls[3].resolve({ items: rows('newest'), nextCursor: null });
    calls[2].reject(new Error('too late'));
    await Promise.all([third, fourth]);
    expect(ids(list)).toEqual(['newest']);
    expect(list.loadError).toBeNull();
    expect(handleError).not.toHaveBeenCalled();
  });

  it('keeps loading while the newest load is still out', async () => {
    const { list, calls } = setup();
    const first = list.load();
    void list.load();
    calls[0].resolve({ items: rows('old'), nextCursor: null });
    await first;
    expect(list.loading).toBe(true);
    expect(list.items).toEqual([]);
  });

  it('appends the next page without the rows already shown, then stops at the last page', async () => {
    const onPage = vi.fn();
    const { list, calls } = setup({ onPage });
    const load = list.load();
    calls[0].resolve({ items: rows('a', 'b'), nextCursor: 'c1' });
    await load;

    const more = list.loadMore();
    expect(list.loadingMore).toBe(true);
    void list.loadMore(); // a second click while the first is out does nothing
    expect(calls).toHaveLength(2);
    expect(calls[1].cursor).toBe('c1');
    calls[1].resolve({ items: rows('b', 'c'), nextCursor: null });
    await more;
    expect(ids(list)).toEqual(['a', 'b', 'c']);
    expect(list.nextCursor).toBeNull();
    expect(list.loadingMore).toBe(false);
    expect(onPage.mock.calls.map(([, replaced]) => replaced)).toEqual([true, false]);

    await list.loadMore(); // no next page: no fetch
    expect(calls).toHaveLength(2);
  });

  it('ignores the late answer of a "Load more" issued before a new load', async () => {
    const { list, calls } = setup();
    const load = list.load();
    calls[0].resolve({ items: rows('a'), nextCursor: 'c1' });
    await load;

    const more = list.loadMore();
    const reload = list.load();
    calls[2].resolve({ items: rows('x'), nextCursor: 'cx' });
    await reload;
    calls[1].resolve({ items: rows('b'), nextCursor: 'c2' });
    await more;
    expect(ids(list)).toEqual(['x']);
    expect(list.nextCursor).toBe('cx');
    expect(list.loadingMore).toBe(false);
  });

  it('shows the first failure in place only, later ones also as a toast', async () => {
    const { list, calls } = setup();
    const boom = new Error('boom');
    let load = list.load();
    calls[0].reject(boom);
    await load;
    expect(list.loadError).toBe('boom');
    expect(list.loading).toBe(false);
    expect(handleError).toHaveBeenLastCalledWith(boom, 'Could not load rows', { toast: false });

    load = list.load();
    expect(list.loadError).toBeNull();
    calls[1].resolve({ items: rows('a'), nextCursor: null });
    await load;

    load = list.load();
    calls[2].reject(boom);
    await load;
    expect(list.loadError).toBe('boom');
    expect(ids(list)).toEqual(['a']);
    expect(handleError).toHaveBeenLastCalledWith(boom, 'Could not load rows', { toast: true });
  });

  it('toasts only while rows are shown, or never, when asked to', async () => {
    const boom = new Error('boom');
    const withRows = setup({ toast: 'with-rows' });
    let load = withRows.list.load();
    withRows.calls[0].resolve({ items: [], nextCursor: null });
    await load;
    load = withRows.list.load();
    withRows.calls[1].reject(boom);
    await load;
    expect(handleError).toHaveBeenLastCalledWith(boom, 'Could not load rows', { toast: false });

    const never = setup({ toast: 'never' });
    load = never.list.load();
    never.calls[0].resolve({ items: rows('a'), nextCursor: null });
    await load;
    load = never.list.load();
    never.calls[1].reject(boom);
    await load;
    expect(never.list.loadError).toBe('boom');
    expect(handleError).toHaveBeenLastCalledWith(boom, 'Could not load rows', { toast: false });
  });

  it('reports a failed "Load more" as a toast and keeps the rows', async () => {
    const { list, calls } = setup({ moreErrorTitle: 'Could not load more rows' });
    const load = list.load();
    calls[0].resolve({ items: rows('a'), nextCursor: 'c1' });
    await load;
    const boom = new Error('boom');
    const more = list.loadMore();
    calls[1].reject(boom);
    await more;
    expect(ids(list)).toEqual(['a']);
    expect(list.nextCursor).toBe('c1');
    expect(list.loadingMore).toBe(false);
    expect(list.loadError).toBeNull();
    expect(handleError).toHaveBeenLastCalledWith(boom, 'Could not load more rows');
  });
});
