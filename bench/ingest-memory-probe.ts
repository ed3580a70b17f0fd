/**
 * Preloaded into the API process by bench/ingest.ts (`--import`): reports the process's memory to
 * the parent over IPC every 250 ms, so the bench sees the heap as well as the RSS.
 */
if (process.send) {
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    process.send?.({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal });
  }, 250);
  timer.unref();
  process.channel?.unref();
}
