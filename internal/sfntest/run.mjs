// Runs one execution of a state machine definition in aws-local-stepfunctions,
// with every Task state answered by a Go HTTP bridge.
//
//   node run.mjs <config.json>
//
// config: {modules, definition, input, bridge, waitMs, retryMs, executionName}
// stdout (one JSON line): {status: "SUCCEEDED"|"FAILED", output?, error?, cause?, events: {type: n}, entered: {state: n}}
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { StateMachine, ExecutionError } = await import(
  pathToFileURL(join(cfg.modules, "aws-local-stepfunctions", "build", "main.node.esm.js")).href
);

// Collect state names by type, at any depth (Map ItemProcessor/Iterator, Parallel Branches).
function statesByType(machine, out = { Task: [], Wait: [], retry: [] }) {
  for (const [name, state] of Object.entries(machine.States ?? {})) {
    if (state.Type === "Task") out.Task.push(name);
    if (state.Type === "Wait") out.Wait.push(name);
    if (state.Retry) out.retry.push(name);
    const nested = [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])].filter(Boolean);
    for (const m of nested) statesByType(m, out);
  }
  return out;
}

// The interpreter matches Retry/Catch ErrorEquals against error.name and uses
// error.message as the Cause, so the bridge's errorType becomes the name.
async function callBridge(state, input) {
  const res = await fetch(cfg.bridge, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ state, input }),
  });
  const text = await res.text();
  if (!res.ok) {
    throw Object.assign(new Error(`bridge answered ${res.status}: ${text}`), { name: "Harness.BridgeError" });
  }
  const reply = JSON.parse(text);
  if (reply.error) {
    throw Object.assign(new Error(reply.error.cause), { name: reply.error.name });
  }
  return reply.output;
}

const found = statesByType(cfg.definition);
const taskResourceLocalHandlers = Object.fromEntries(found.Task.map((n) => [n, (input) => callBridge(n, input)]));
const waitTimeOverrides = Object.fromEntries(found.Wait.map((n) => [n, cfg.waitMs]));
const retryIntervalOverrides = Object.fromEntries(found.retry.map((n) => [n, cfg.retryMs]));

const machine = new StateMachine(cfg.definition);
const execution = machine.run(cfg.input, {
  overrides: { taskResourceLocalHandlers, waitTimeOverrides, retryIntervalOverrides },
  context: cfg.executionName ? { Execution: { Name: cfg.executionName } } : {},
});

const events = {};
const entered = {};
const collecting = (async () => {
  for await (const ev of execution.eventLogs) {
    events[ev.type] = (events[ev.type] ?? 0) + 1;
    if (ev.type === "StateEntered") entered[ev.state.name] = (entered[ev.state.name] ?? 0) + 1;
  }
})();

let report;
try {
  const output = await execution.result;
  report = { status: "SUCCEEDED", output };
} catch (err) {
  const e = err instanceof ExecutionError && err.cause ? err.cause : err;
  report = { status: "FAILED", error: e.name, cause: e.message };
}
await collecting;
report.events = events;
report.entered = entered;
process.stdout.write(JSON.stringify(report) + "\n", () => process.exit(0));
