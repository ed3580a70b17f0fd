import { apiBase, seg } from './http';

/**
 * Live changes of a workspace (optionally one mini program) over server-sent events. Calls
 * `onChange` (coalesced: one call per burst) on every `change` event; returns the unsubscribe.
 */
export function subscribeToChanges(workspaceId: string, miniProgramId: string | null, onChange: () => void): () => void {
  if (typeof EventSource === 'undefined') return () => {};
  const query = miniProgramId ? `?miniProgramId=${encodeURIComponent(miniProgramId)}` : '';
  const source = new EventSource(`${apiBase}/workspaces/${seg(workspaceId)}/events${query}`, { withCredentials: true });
  let timer: ReturnType<typeof setTimeout> | null = null;
  const fire = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, 120);
  };
  source.addEventListener('change', fire);
  return () => {
    if (timer) clearTimeout(timer);
    source.removeEventListener('change', fire);
    source.close();
  };
}
