// The seed's own stack for `make bench-e2e`: what a user would run instead of queue-operator,
// as ../../shared/seed/queue-system.md describes it. A Node HTTP server takes
// POST /api/files/:id/enrich and answers GET /api/jobs/:jobId (the seed's JSON shapes) over a
// BullMQ queue; Node workers run the enrichment against the same fake Open-Meteo and write the
// same pricing_rows columns to the same PostgreSQL as queue-operator's enrichment processor.
//
//   node seedstack.js server   # prints "listening <port>" on stdout once it serves
//   node seedstack.js worker   # prints "ready" once its BullMQ worker runs
//
// Environment: REDIS_URL, DATABASE_URL, DATABASE_SCHEMA (queue-operator's tables), JWT_SECRET and
// JWT_ISSUER (HS256 tokens of that iss whose sub is the user),
// OPEN_METEO_FORECAST_URL, ENRICHMENT_WORKER_CONCURRENCY, RETENTION_SECONDS (completed and
// failed jobs are removed that long after they finish), PORT (0: any free loopback port).
//
// Left out, as the seed's worker would have them but the benchmark's inputs do not need them:
// holidays (every row gets is_holiday false) and the archive API (the seeded dates are all
// within the forecast's range).
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');
const { Queue, Worker, Job } = require('bullmq');
const IORedis = require('ioredis');
const pg = require('pg');

pg.types.setTypeParser(1082, (v) => v); // date columns stay YYYY-MM-DD strings

const QUEUE = 'enrichment';
const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) throw new Error(`${name} is not set`);
    return fallback;
  }
  return v;
};

function redisConnection() {
  return new IORedis(env('REDIS_URL'), { maxRetriesPerRequest: null });
}

function pool() {
  // As queue-operator's pgx pools: at most max(4, cores) connections, kept while idle.
  return new pg.Pool({
    connectionString: env('DATABASE_URL'), max: 4, idleTimeoutMillis: 0,
    options: `-c search_path=${env('DATABASE_SCHEMA', 'queue_operator')}`,
  });
}

// verifyToken returns the token's sub when it is an unexpired HS256 JWT of issuer signed with
// secret.
function verifyToken(header, secret, issuer) {
  const m = /^Bearer (.+)$/.exec(header || '');
  if (!m) return null;
  const parts = m[1].split('.');
  if (parts.length !== 3) return null;
  const want = crypto.createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return null;
  let head;
  let claims;
  try {
    head = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  } catch {
    return null;
  }
  if (head.alg !== 'HS256' || claims.iss !== issuer || typeof claims.sub !== 'string') return null;
  if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) return null;
  return claims.sub;
}

function decode(component) {
  try {
    return decodeURIComponent(component);
  } catch {
    return null;
  }
}

function send(res, code, body) {
  const data = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

async function server() {
  const secret = env('JWT_SECRET');
  const issuer = env('JWT_ISSUER');
  const retention = Number(env('RETENTION_SECONDS', '86400'));
  const queue = new Queue(QUEUE, { connection: redisConnection() });
  const db = pool();
  const enrich = /^\/api\/files\/([^/]+)\/enrich$/;
  const job = /^\/api\/jobs\/([^/]+)$/;

  const handle = async (req, res) => {
    const user = verifyToken(req.headers.authorization, secret, issuer);
    if (!user) return send(res, 401, { success: false, error: 'Unauthorized' });
    const url = new URL(req.url, 'http://localhost');
    let m;
    if (req.method === 'POST' && (m = enrich.exec(url.pathname))) {
      req.resume(); // the body ({}) is not used
      const propertyId = decode(m[1]);
      if (propertyId === null) return send(res, 400, { success: false, error: 'Malformed file id' });
      const { rows } = await db.query(
        'SELECT latitude, longitude, country_code FROM properties WHERE id = $1 AND user_id = $2',
        [propertyId, user]);
      if (rows.length === 0) return send(res, 404, { success: false, error: 'File not found' });
      const data = {
        propertyId, userId: user,
        location: { latitude: rows[0].latitude, longitude: rows[0].longitude },
        countryCode: rows[0].country_code || undefined,
      };
      const jobId = `enrich-${propertyId.slice(0, 8)}-${Date.now()}-${crypto.randomBytes(4).toString('hex')}`;
      await queue.add('enrich', data, {
        jobId, attempts: 5, backoff: { type: 'exponential', delay: 5000 },
        removeOnComplete: { age: retention }, removeOnFail: { age: retention },
      });
      return send(res, 202, { success: true, jobId });
    }
    if (req.method === 'GET' && (m = job.exec(url.pathname))) {
      const id = decode(m[1]);
      if (id === null) return send(res, 400, { success: false, error: 'Malformed job id' });
      const j = await Job.fromId(queue, id);
      if (!j || j.data.userId !== user) return send(res, 404, { success: false, error: 'Job not found' });
      const status = await j.getState();
      return send(res, 200, {
        success: true,
        job: {
          id: j.id, status, progress: j.progress, data: j.data, attemptsMade: j.attemptsMade,
          processedOn: j.processedOn, finishedOn: j.finishedOn, failedReason: j.failedReason,
        },
      });
    }
    return send(res, 404, { success: false, error: 'Not found' });
  };

  const srv = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, { success: false, error: String(err && err.message) });
    });
  });
  srv.keepAliveTimeout = 60000;
  srv.listen(Number(env('PORT', '0')), '127.0.0.1', () => {
    process.stdout.write(`listening ${srv.address().port}\n`);
  });
  const stop = async () => {
    srv.close();
    await queue.close();
    await db.end();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const northernSeasons = ['winter', 'winter', 'spring', 'spring', 'spring', 'summer', 'summer', 'summer',
  'autumn', 'autumn', 'autumn', 'winter'];
const opposite = { winter: 'summer', summer: 'winter', spring: 'autumn', autumn: 'spring' };

// isoWeek is the ISO 8601 week and week-year of a UTC midnight date.
function isoWeek(d) {
  const t = new Date(d.getTime());
  const dow = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - dow); // the week's Thursday
  const year = t.getUTCFullYear();
  const week = Math.ceil(((t - Date.UTC(year, 0, 1)) / 86400000 + 1) / 7);
  return { week, year };
}

// features are the columns queue-operator's enrichment writes for one date, without holidays.
function features(date, latitude, weather) {
  const d = new Date(`${date}T00:00:00Z`);
  const dow = d.getUTCDay() || 7;
  const month = d.getUTCMonth() + 1;
  const season = northernSeasons[month - 1];
  const { week, year } = isoWeek(d);
  const w = weather.get(date) || {};
  return {
    date, temp_max_c: w.tmax ?? null, temp_min_c: w.tmin ?? null, precipitation_mm: w.precip ?? null,
    weather_code: w.code ?? null, is_holiday: false, holiday_name: null, day_of_week: dow,
    is_weekend: dow >= 6, month, quarter: Math.floor((month - 1) / 3) + 1, iso_week: week, iso_year: year,
    season: latitude < 0 ? opposite[season] : season, days_to_next_holiday: null,
  };
}

async function fetchWeather(base, location, from, to) {
  const url = new URL(base);
  url.search = new URLSearchParams({
    latitude: String(location.latitude), longitude: String(location.longitude), start_date: from, end_date: to,
    daily: 'temperature_2m_max,temperature_2m_min,precipitation_sum,weather_code', timezone: 'auto',
  }).toString();
  const res = await fetch(url, { signal: AbortSignal.timeout(20000) });
  if (!res.ok) throw new Error(`Open-Meteo answered ${res.status}`);
  const body = await res.json();
  const daily = body.daily || {};
  const out = new Map();
  (daily.time || []).forEach((day, i) => out.set(day, {
    tmax: daily.temperature_2m_max[i], tmin: daily.temperature_2m_min[i],
    precip: daily.precipitation_sum[i], code: daily.weather_code[i],
  }));
  return out;
}

async function worker() {
  const db = pool();
  const forecastURL = env('OPEN_METEO_FORECAST_URL');
  const setStatus = (id, status) => db.query(
    `UPDATE properties SET enrichment_status = $2::text,
       enriched_at = CASE WHEN $2::text = 'completed' THEN now() ELSE enriched_at END, updated_at = now()
     WHERE id = $1`, [id, status]);

  const process_ = async (job) => {
    const { propertyId, userId, location } = job.data;
    const owned = await db.query('SELECT 1 FROM properties WHERE id = $1 AND user_id = $2', [propertyId, userId]);
    if (owned.rows.length === 0) throw new Error(`property ${propertyId} not found`);
    const { rows } = await db.query('SELECT date FROM pricing_rows WHERE property_id = $1 ORDER BY date', [propertyId]);
    await setStatus(propertyId, 'running');
    if (rows.length === 0) {
      await setStatus(propertyId, 'completed');
      return { rows: 0 };
    }
    const weather = await fetchWeather(forecastURL, location, rows[0].date, rows[rows.length - 1].date);
    await job.updateProgress(25);
    await job.updateProgress(50);
    const f = rows.map((r) => features(r.date, location.latitude, weather));
    await job.updateProgress(75);
    const col = (k) => f.map((x) => x[k]);
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      await client.query(`
        INSERT INTO pricing_rows AS r (property_id, date, temp_max_c, temp_min_c, precipitation_mm,
          weather_code, is_holiday, holiday_name, day_of_week, is_weekend, month, quarter, iso_week,
          iso_year, season, days_to_next_holiday, enriched_at)
        SELECT $1, f.date, f.temp_max_c, f.temp_min_c, f.precipitation_mm, f.weather_code, f.is_holiday,
          f.holiday_name, f.day_of_week, f.is_weekend, f.month, f.quarter, f.iso_week, f.iso_year,
          f.season, f.days_to_next_holiday, now()
        FROM unnest($2::date[], $3::float8[], $4::float8[], $5::float8[], $6::int[], $7::bool[],
          $8::text[], $9::int[], $10::bool[], $11::int[], $12::int[], $13::int[], $14::int[],
          $15::text[], $16::int[])
          AS f(date, temp_max_c, temp_min_c, precipitation_mm, weather_code, is_holiday, holiday_name,
            day_of_week, is_weekend, month, quarter, iso_week, iso_year, season, days_to_next_holiday)
        ON CONFLICT (property_id, date) DO UPDATE SET
          temp_max_c = EXCLUDED.temp_max_c, temp_min_c = EXCLUDED.temp_min_c,
          precipitation_mm = EXCLUDED.precipitation_mm, weather_code = EXCLUDED.weather_code,
          is_holiday = EXCLUDED.is_holiday, holiday_name = EXCLUDED.holiday_name,
          day_of_week = EXCLUDED.day_of_week, is_weekend = EXCLUDED.is_weekend, month = EXCLUDED.month,
          quarter = EXCLUDED.quarter, iso_week = EXCLUDED.iso_week, iso_year = EXCLUDED.iso_year,
          season = EXCLUDED.season, days_to_next_holiday = EXCLUDED.days_to_next_holiday,
          enriched_at = EXCLUDED.enriched_at`,
      [propertyId, col('date'), col('temp_max_c'), col('temp_min_c'), col('precipitation_mm'),
        col('weather_code'), col('is_holiday'), col('holiday_name'), col('day_of_week'), col('is_weekend'),
        col('month'), col('quarter'), col('iso_week'), col('iso_year'), col('season'), col('days_to_next_holiday')]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
    await setStatus(propertyId, 'completed');
    await job.updateProgress(100);
    return { rows: f.length };
  };

  const w = new Worker(QUEUE, process_, {
    connection: redisConnection(),
    concurrency: Number(env('ENRICHMENT_WORKER_CONCURRENCY', '3')),
  });
  w.on('error', (err) => process.stderr.write(`worker error: ${err && err.message}\n`));
  await w.waitUntilReady();
  process.stdout.write('ready\n');
  const stop = async () => {
    await w.close();
    await db.end();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const mode = process.argv[2];
const main = { server, worker }[mode];
if (!main) {
  process.stderr.write('usage: node seedstack.js server|worker\n');
  process.exit(2);
}
main().catch((err) => {
  process.stderr.write(`seedstack ${mode}: ${err && err.stack}\n`);
  process.exit(1);
});
