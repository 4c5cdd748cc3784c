// A second, independent WebSocket client for bench/stream_rpc.py: Node.js with the `ws` package (not
// Python, not our frame code), driving STREAMS streams closed loop over one socket for SECONDS: each
// stream sends one row, waits for its answer, sends the next, 28 rows a sequence over and over.
//
//   node bench/ws_client.mjs URL STREAMS SECONDS FIRST_ID   (NODE_PATH: a folder holding ws)
//
// Prints one JSON line: rows answered, their latencies in ms (sorted), wall seconds, CPU seconds.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const WebSocket = require("ws");
const [url, streamsArg, secondsArg, firstArg] = process.argv.slice(2);
const streams = Number(streamsArg), seconds = Number(secondsArg), first = Number(firstArg);
const STEPS = 28, FEATURES = 28;

function frame(sid, t, row) {
  const buf = Buffer.alloc(16 + 4 * FEATURES);
  buf.writeBigUInt64LE(BigInt(sid), 0);
  buf.writeUInt32LE((t === 0 ? 1 : 0) | (t === STEPS - 1 ? 2 : 0), 8);
  buf.writeUInt32LE(1, 12);
  for (let i = 0; i < FEATURES; i++) buf.writeFloatLE(row[i], 16 + 4 * i);
  return buf;
}

// Every stream's 28 frames, made once: random rows in [0, 1).
const frames = [];
for (let k = 0; k < streams; k++) {
  const own = [];
  for (let t = 0; t < STEPS; t++) own.push(frame(first + k, t, Array.from({ length: FEATURES }, Math.random)));
  frames.push(own);
}

const ws = new WebSocket(url, { perMessageDeflate: false });
const step = new Array(streams).fill(0), sent = new Array(streams).fill(0);
const latencies = [];
let open = 0, stop = 0, errors = 0;
const t0 = process.hrtime.bigint(), cpu0 = process.cpuUsage();
const now = () => Number(process.hrtime.bigint() - t0) / 1e6;

ws.on("open", () => {
  stop = now() + seconds * 1000;
  for (let k = 0; k < streams; k++) {
    sent[k] = now();
    ws.send(frames[k][0]);
    open++;
  }
});
ws.on("message", (data, isBinary) => {
  let k;
  if (!isBinary) {
    const answer = JSON.parse(data.toString());
    if (answer.sequence_id === null) throw new Error(answer.error);
    errors++;
    k = answer.sequence_id - first;
    step[k] = STEPS - 1; // start the stream again
  } else {
    k = Number(data.readBigUInt64LE(0)) - first;
  }
  const t = now();
  latencies.push(t - sent[k]);
  step[k] = (step[k] + 1) % STEPS;
  if (t < stop) {
    sent[k] = t;
    ws.send(frames[k][step[k]]);
  } else if (--open === 0) {
    const cpu = process.cpuUsage(cpu0);
    latencies.sort((a, b) => a - b);
    console.log(JSON.stringify({ rows: latencies.length, errors, wall: now() / 1000,
      cpu_seconds: (cpu.user + cpu.system) / 1e6, latency_ms: latencies }));
    ws.close();
  }
});
ws.on("error", (e) => { console.error(`${url}: ${e.message}`); process.exit(1); });
