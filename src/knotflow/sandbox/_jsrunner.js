// The JavaScript/TypeScript runner. It runs INSIDE the sandbox: Deno with no permissions at all (no files, no
// network, no environment, no subprocesses), itself inside bubblewrap. One process serves exactly ONE call: it says
// it is ready, reads one request from stdin (to its end), imports the user's code as a
// TypeScript module, calls `main({ params })` and writes one JSON line to stdout. The server then ends the process,
// so nothing the code did (globals, prototypes, timers) can reach another call.
//
// Config (argv[0], JSON): { max_output: bytes of the output's JSON, max_stdout: characters of console text kept }.

const config = JSON.parse(Deno.args[0]);
const encoder = new TextEncoder();
// Bound before the user's module loads, so that code replacing Deno.stdout or JSON cannot forge our answer.
const writeSync = Deno.stdout.writeSync.bind(Deno.stdout);
const exit = Deno.exit;
const stringify = JSON.stringify;
const inspect = Deno.inspect;

function send(message) {
  // The leading newline puts our line on its own even if the code wrote a partial line to stdout itself.
  const text = typeof message === "string" ? message : stringify(message);
  let bytes = encoder.encode("\n" + text + "\n");
  while (bytes.length > 0) bytes = bytes.subarray(writeSync(bytes));
}

let captured = "";
let truncated = false;
function capture(...args) {
  const text = args.map((arg) => (typeof arg === "string" ? arg : inspect(arg))).join(" ") + "\n";
  const room = config.max_stdout - captured.length;
  if (text.length > room) truncated = true;
  if (room > 0) captured += text.slice(0, room);
}
for (const name of ["log", "info", "warn", "error", "debug", "trace", "dir"]) console[name] = capture;
const stdout = () => captured + (truncated ? "\n[output truncated]" : "");

// Deno sets much up lazily on first use: the TypeScript loading (~10 ms for each of the first two modules), timers
// (~25 ms for the first), inspection, URL, crypto, Intl. That is done here, before the runner says it is ready,
// so that a call does not pay for it: it takes a warm call from ~35 ms to ~2.5 ms.
for (let i = 0; i < 3; i++) {
  await import("data:application/typescript," + encodeURIComponent(`export const warm: number = ${i};`));
}
clearInterval(setInterval(() => {}, 1 << 30));
clearTimeout(setTimeout(() => {}, 0));
inspect({ warm: [1, "a", new Map([[1, 2]])] });
new URL("http://warm.invalid/?a=1").searchParams.get("a");
crypto.randomUUID();
atob(btoa("warm"));
structuredClone({ warm: [new Date(0)] });
new Intl.NumberFormat("en-US").format(1.5);
new TextDecoder().decode(encoder.encode("warm"));
await new Promise((resolve) => setTimeout(resolve, 0));
send({ ready: true });
// A header line {id, timeout}, then the body {code, params}, then the end of input.
const input = await new Response(Deno.stdin.readable).text();
const split = input.indexOf("\n");
const request = { ...JSON.parse(input.slice(0, split)), ...JSON.parse(input.slice(split + 1)) };
// Appended, not prepended, so that the line numbers in the code's errors are the user's own.
const suffix = "\n;export const __knotflow_main__ = typeof main === 'undefined' ? undefined : main;\n";
const url = "data:application/typescript," + encodeURIComponent(request.code + suffix);

function failure(kind, message, extra = {}) {
  return { id: request.id, ok: false, kind, message, stdout: stdout(), ...extra };
}

// V8 names the module by its (long, sometimes abbreviated) data: URL; the user knows it as <code>. The URL may hold
// parentheses (encodeURIComponent keeps them), so a frame's location is the last line:column on its line.
const named = (text) => text.replace(/data:application\/typescript,.*:(\d+):(\d+)/g, "<code>:$1:$2");

function describe(error) {
  if (error instanceof Error) {
    // The runner's own frames say nothing to the user.
    const stack = named(String(error.stack ?? ""))
      .split("\n")
      .filter((frame) => !frame.includes("/sandbox/jsrunner.js"))
      .join("\n");
    const line = /<code>:(\d+):\d+/.exec(stack);
    // Deno reports a module that does not parse as a TypeError whose message is the SyntaxError.
    const message = named(String(error.message));
    const title = message.startsWith("SyntaxError") ? message : `${error.name}: ${message}`;
    return { message: title, traceback: stack, line: line ? Number(line[1]) : null };
  }
  return { message: `Uncaught ${inspect(error)}`, traceback: "", line: null };
}

let outcome;
// Deno ends a program whose top-level await can no longer resolve; a `main` that never settles should meet the
// timeout instead, as it does in Python.
setInterval(() => {}, 1 << 30);
try {
  const module = await import(url);
  const main = module.__knotflow_main__;
  if (main === undefined) throw new ReferenceError("main is not defined");
  if (typeof main !== "function") throw new TypeError("main is not a function");
  const result = await main({ params: request.params });
  if (result === null || typeof result !== "object" || Array.isArray(result)) {
    const type = result === null ? "null" : Array.isArray(result) ? "array" : typeof result;
    outcome = failure("invalid_output", `main must return an object, not ${type}`);
  } else {
    let data;
    try {
      data = stringify(result);
    } catch (error) {
      outcome = failure("invalid_output", `the output is not JSON: ${error}`);
    }
    if (outcome === undefined && (typeof data !== "string" || data[0] !== "{")) {
      outcome = failure("invalid_output", "main must return an object whose JSON is an object"); // e.g. a Date
    }
    if (outcome === undefined) {
      const size = encoder.encode(data).length;
      if (size > config.max_output) {
        outcome = failure("output_too_large", `the output is ${size} bytes, over the limit of ${config.max_output}`);
      } else {
        // Spliced rather than re-serialized: `data` is already the output's JSON.
        outcome = `{"id":${stringify(request.id)},"ok":true,"stdout":${stringify(stdout())},"output":${data}}`;
      }
    }
  }
} catch (error) {
  const described = describe(error);
  const memory = error instanceof RangeError && /allocation failed/.test(String(error.message));
  outcome = failure(memory ? "memory" : "exception", described.message, memory ? {} : described);
}
send(outcome);
exit(0);
