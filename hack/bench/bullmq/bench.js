'use strict';
// The BullMQ side of hack/bench: one scenario run per process, driven by the Go harness, which
// passes a JSON config as the only argument and reads one JSON result line from stdout.
// Jobs: ~200-byte JSON payload (the harness' bytes), custom ids b-<i>, removeOnComplete: true,
// a no-op processor.
const { Queue, Worker } = require('bullmq');
const IORedis = require('ioredis');

const cfg = JSON.parse(process.argv[2]);
const p = cfg.params;
const connection = { host: '127.0.0.1', port: cfg.port, maxRetriesPerRequest: null };
const data = JSON.parse(cfg.payload);
const jobOpts = (i) => ({ jobId: 'b-' + i, removeOnComplete: true });

// Never run past the harness' bound.
setTimeout(() => {
  console.error(`bullmq bench: ${cfg.scenario} timed out after ${cfg.timeout_ms} ms`);
  process.exit(2);
}, cfg.timeout_ms).unref();

const admin = new IORedis(connection);
const nowNs = () => process.hrtime.bigint();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function redisCPU() {
  const txt = await admin.info('cpu');
  const m = {};
  for (const line of txt.split('\n')) {
    const [k, v] = line.trim().split(':');
    if (v !== undefined) m[k] = parseFloat(v);
  }
  return m.used_cpu_sys + m.used_cpu_user;
}

function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1));
  return sorted[i];
}

function latencies(out, latNs) {
  const ms = latNs.map((ns) => Number(ns) / 1e6).sort((a, b) => a - b);
  out.p50_ms = percentile(ms, 50);
  out.p99_ms = percentile(ms, 99);
  out.has_latency = true;
}

async function measure(jobs, body) {
  const r0 = await redisCPU();
  const c0 = process.cpuUsage();
  const t0 = nowNs();
  const out = { jobs };
  await body(out);
  out.seconds = Number(nowNs() - t0) / 1e9;
  const c1 = process.cpuUsage(c0);
  out.client_cpu_us = c1.user + c1.system;
  out.redis_cpu_us = ((await redisCPU()) - r0) * 1e6;
  return out;
}

// forEach runs fn(i) for i in [0, n) with `inflight` calls in flight.
async function forEach(n, inflight, fn) {
  let next = 0;
  const lanes = [];
  for (let l = 0; l < inflight; l++) {
    lanes.push((async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        await fn(i);
      }
    })());
  }
  await Promise.all(lanes);
}

// startWorker runs a worker of concurrency conc; started(i) when the processor starts job
// b-<i>, finished() on 'completed' (after BullMQ moved the job to completed, here: removed it).
async function startWorker(name, conc, started, finished) {
  const w = new Worker(name, async (job) => {
    started(parseInt(job.id.slice(2), 10));
  }, { connection, concurrency: conc, autorun: false });
  w.on('completed', finished);
  w.on('error', (e) => console.error('bullmq worker error:', e));
  w.on('failed', (job, e) => console.error('bullmq job failed:', job && job.id, e));
  await w.waitUntilReady();
  w.run().catch((e) => console.error('bullmq worker run:', e));
  return w;
}

function counter(n) {
  let count = 0;
  let resolve;
  const done = new Promise((r) => { resolve = r; });
  if (n === 0) resolve();
  return { inc: () => { if (++count === n) resolve(); }, done, get: () => count };
}

async function prefill(q, n) {
  const chunk = 500;
  for (let s = 0; s < n; s += chunk) {
    const batch = [];
    for (let i = s; i < Math.min(n, s + chunk); i++) batch.push({ name: 'bench', data, opts: jobOpts(i) });
    await q.addBulk(batch);
  }
}

// warm: enqueue and drain a few jobs on another queue (JIT, connections, script caches).
async function warm() {
  if (!p.warm_n) return;
  const q = new Queue('warm', { connection });
  for (let i = 0; i < p.warm_n; i++) await q.add('bench', data, jobOpts(i));
  await q.addBulk([{ name: 'bench', data, opts: jobOpts(p.warm_n) }]);
  const c = counter(p.warm_n + 1);
  const w = await startWorker('warm', 10, () => {}, c.inc);
  await c.done;
  await w.close();
  await q.close();
}

async function main() {
  await warm();
  await admin.flushall();
  const q = new Queue('bench', { connection });
  await q.waitUntilReady();
  let out;
  switch (cfg.scenario) {
    case 'seq':
      out = await measure(p.seq_n, async (o) => {
        const lat = [];
        for (let i = 0; i < p.seq_n; i++) {
          const t = nowNs();
          await q.add('bench', data, jobOpts(i));
          lat.push(nowNs() - t);
        }
        latencies(o, lat);
      });
      break;
    case 'conc':
      out = await measure(p.conc_n, () => forEach(p.conc_n, p.conc_inflight, (i) => q.add('bench', data, jobOpts(i))));
      break;
    case 'bulk': {
      const batches = Math.ceil(p.bulk_n / p.bulk_size);
      out = await measure(p.bulk_n, () => forEach(batches, p.conc_inflight, (b) => {
        const jobs = [];
        for (let i = b * p.bulk_size; i < Math.min(p.bulk_n, (b + 1) * p.bulk_size); i++) {
          jobs.push({ name: 'bench', data, opts: jobOpts(i) });
        }
        return q.addBulk(jobs);
      }));
      break;
    }
    case 'drain': {
      await prefill(q, p.drain_n);
      const c = counter(p.drain_n);
      let w;
      out = await measure(p.drain_n, async () => {
        w = await startWorker('bench', p.drain_conc, () => {}, c.inc);
        await c.done;
      });
      await w.close();
      break;
    }
    case 'pickup': {
      const n = p.pickup_n;
      const enq = new Array(n).fill(0n);
      const lat = new Array(n).fill(-1n);
      const c = counter(n);
      const w = await startWorker('bench', p.pickup_conc, (i) => {
        if (i >= 0 && i < n && enq[i] > 0n && lat[i] < 0n) lat[i] = nowNs() - enq[i];
      }, c.inc);
      await sleep(p.idle_before_ms); // the worker is idle, blocked
      out = await measure(n, async (o) => {
        const start = nowNs();
        const every = BigInt(Math.round(p.pickup_every_ms * 1e6));
        for (let i = 0; i < n; i++) {
          const due = start + BigInt(i) * every;
          for (;;) {
            const ahead = Number(due - nowNs()) / 1e6;
            if (ahead <= 0) break;
            await sleep(ahead >= 1 ? Math.floor(ahead) : 0);
          }
          enq[i] = nowNs();
          await q.add('bench', data, jobOpts(i));
        }
        await c.done;
        latencies(o, lat.filter((v) => v >= 0n));
      });
      await w.close();
      break;
    }
    default:
      throw new Error(`unknown scenario ${cfg.scenario}`);
  }
  await q.close();
  await admin.quit();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(() => process.exit(0), (e) => {
  console.error('bullmq bench:', e);
  process.exit(1);
});
