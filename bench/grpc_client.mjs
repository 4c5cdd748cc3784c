// A second, independent gRPC stream client for bench/stream_rpc.py: Node.js with @grpc/grpc-js (not
// Python's grpcio, not our code), driving STREAMS sequences closed loop over one ModelStreamInfer call
// (the protocol's bidirectional stream, what Triton's clients use for sequence models) for SECONDS:
// each sequence sends one row, waits for its answer, sends the next, 28 rows a sequence over and over.
//
//   node bench/grpc_client.mjs HOST:PORT MODEL STREAMS SECONDS FIRST_ID DESCRIPTORS
//      (NODE_PATH: a folder holding @grpc/grpc-js and @grpc/proto-loader; DESCRIPTORS: the protocol's
//       FileDescriptorSet, written by bench/stream_rpc.py from tritonclient's own modules)
//
// Prints one JSON line: rows answered, their latencies in ms (sorted), wall seconds, CPU seconds.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const [address, model, streamsArg, secondsArg, firstArg, descriptors] = process.argv.slice(2);
const streams = Number(streamsArg), seconds = Number(secondsArg), first = Number(firstArg);
const STEPS = 28, FEATURES = 28;

const definition = protoLoader.loadFileDescriptorSetFromBuffer(readFileSync(descriptors), {
  keepCase: true, longs: Number, defaults: false, oneofs: true,
});
const Service = grpc.loadPackageDefinition(definition).inference.GRPCInferenceService;
const client = new Service(address, grpc.credentials.createInsecure());

// Every sequence's 28 requests, made once: random rows in [0, 1).
const requests = [];
for (let k = 0; k < streams; k++) {
  const own = [];
  for (let t = 0; t < STEPS; t++) {
    const row = Buffer.alloc(4 * FEATURES);
    for (let i = 0; i < FEATURES; i++) row.writeFloatLE(Math.random(), 4 * i);
    own.push({
      model_name: model, id: String(k),
      inputs: [{ name: "row", datatype: "FP32", shape: [1, FEATURES] }],
      raw_input_contents: [row],
      // a map field, as protobufjs reads it from a descriptor set: its entries
      parameters: [
        { key: "sequence_id", value: { int64_param: first + k } },
        { key: "sequence_start", value: { bool_param: t === 0 } },
        { key: "sequence_end", value: { bool_param: t === STEPS - 1 } },
      ],
    });
  }
  requests.push(own);
}

const step = new Array(streams).fill(0), sent = new Array(streams).fill(0);
const latencies = [];
let open = 0, errors = 0;
const t0 = process.hrtime.bigint(), cpu0 = process.cpuUsage();
const now = () => Number(process.hrtime.bigint() - t0) / 1e6;
const stop = now() + seconds * 1000;
const call = client.ModelStreamInfer();

call.on("data", (answer) => {
  if (answer.error_message) {
    errors++;
    console.error(answer.error_message);
  }
  const k = Number(answer.infer_response.id);
  const t = now();
  latencies.push(t - sent[k]);
  step[k] = (step[k] + 1) % STEPS;
  if (t < stop) {
    sent[k] = t;
    call.write(requests[k][step[k]]);
  } else if (--open === 0) {
    call.end();
  }
});
call.on("end", () => {
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  console.log(JSON.stringify({ rows: latencies.length, errors, wall: now() / 1000,
    cpu_seconds: (cpu.user + cpu.system) / 1e6, latency_ms: latencies }));
  client.close();
});
call.on("error", (e) => { console.error(`${address}: ${e.message}`); process.exit(1); });
for (let k = 0; k < streams; k++) {
  sent[k] = now();
  call.write(requests[k][0]);
  open++;
}
