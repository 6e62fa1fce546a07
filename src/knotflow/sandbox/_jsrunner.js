// The JavaScript side of a JavaScript/TypeScript call. It runs INSIDE the sandbox, in the fresh QuickJS context of
// one call's forked child (see jsworker.py), before the user's code: it defines what Coze's code may use besides
// the language itself (console, timers), calls `main({ params })` once the code's module has run, and keeps the
// outcome for the child to take. The value of this file is a function; jsworker.py calls it with the config
// (JSON: {memory_mb, max_stdout}) and the source of inspect.js, and gets back `host`, the one entry point it
// holds. The user's code shares this context, so it can spoil only its own outcome: the child checks every value
// it takes (types, sizes, limits) and never trusts what this file reports.
(function knotflowRunner(configJson, inspectSource) {
  "use strict";
  // Bound before the user's code runs: code that replaces JSON or eval changes only how its own result reads.
  const config = JSON.parse(configJson);
  const stringify = JSON.stringify;
  const indirectEval = eval;
  const now = performance.now.bind(performance);
  // Text handed to the child as one flat string: QuickJS keeps a long concatenation (the console text) as a rope,
  // which the Python binding cannot take back.
  const join = Array.prototype.join;
  const flat = (text) => (typeof text === "string" ? join.call([text], "") : text);
  const defineGlobal = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });

  // --- console: kept up to max_stdout characters, the rest cut (never an error) ---------------------------------
  let inspect = null; // object-inspect, evaluated on the first value that is not text (it costs ~2 ms)
  const render = (value) => {
    if (typeof value === "string") return value;
    if (inspect === null) {
      indirectEval(inspectSource);
      inspect = globalThis.knotflowInspect;
      delete globalThis.knotflowInspect;
    }
    return inspect(value, { depth: 4 });
  };
  let captured = "";
  let truncated = false;
  function write(text) {
    const room = config.max_stdout - captured.length;
    if (text.length > room) truncated = true;
    if (room > 0) captured += text.slice(0, room);
  }
  // Node's format: "%s %d %i %f %j %o %O %c %%" in a first argument that is text, the rest joined by spaces.
  function format(args) {
    let rest = args;
    let head = "";
    if (typeof args[0] === "string" && args[0].includes("%")) {
      let index = 1;
      head = args[0].replace(/%([sdifjoOc%])/g, (match, letter) => {
        if (letter === "%") return "%";
        if (index >= args.length) return match;
        const value = args[index++];
        if (letter === "s") return typeof value === "string" ? value : render(value);
        if (letter === "d" || letter === "i") {
          const number = typeof value === "bigint" ? value : Number(value);
          return String(letter === "i" && typeof number === "number" ? Math.trunc(number) : number);
        }
        if (letter === "f") return String(Number(value));
        if (letter === "j") return stringify(value);
        if (letter === "c") return "";
        return render(value);
      });
      rest = args.slice(index);
      return [head, ...rest.map(render)].join(" ");
    }
    return rest.map(render).join(" ");
  }
  function log(...args) {
    if (captured.length >= config.max_stdout) {
      truncated = true; // nothing more is kept: skip the formatting, a flood costs no more than its loop
      return;
    }
    write(format(args) + "\n");
  }
  const counts = new Map();
  const timers = new Map();
  const console = {
    log, info: log, warn: log, error: log, debug: log, trace: log, dir: (value) => log(value), table: log,
    assert: (condition, ...args) => condition || log(...(args.length ? ["Assertion failed:", ...args] : ["Assertion failed"])),
    count: (label = "default") => {
      counts.set(label, (counts.get(label) ?? 0) + 1);
      log(`${label}: ${counts.get(label)}`);
    },
    countReset: (label = "default") => counts.delete(label),
    time: (label = "default") => timers.set(label, now()),
    timeLog: (label = "default", ...args) => timers.has(label) && log(`${label}: ${now() - timers.get(label)}ms`, ...args),
    timeEnd: (label = "default") => {
      if (timers.has(label)) log(`${label}: ${now() - timers.get(label)}ms`);
      timers.delete(label);
    },
    group: (...args) => args.length && log(...args),
    groupCollapsed: (...args) => args.length && log(...args),
    groupEnd: () => {},
    clear: () => {},
  };
  defineGlobal("console", console);

  // --- timers: the child waits for the earliest one when nothing else is left to run -------------------------
  const scheduled = new Map(); // id -> {due, callback, args, every}
  let lastId = 0;
  function knotflowSchedule(callback, delay, args, repeat) {
    if (typeof callback !== "function") throw new TypeError("The callback must be a function");
    const wait = Math.max(0, Number(delay) || 0);
    scheduled.set(++lastId, { due: now() + wait, callback, args, every: repeat ? Math.max(1, wait) : null });
    return lastId;
  }
  const cancel = (id) => void scheduled.delete(Number(id));
  defineGlobal("setTimeout", function knotflowSetTimeout(callback, delay, ...args) {
    return knotflowSchedule(callback, delay, args, false);
  });
  defineGlobal("setInterval", function knotflowSetInterval(callback, delay, ...args) {
    return knotflowSchedule(callback, delay, args, true);
  });
  defineGlobal("clearTimeout", cancel);
  defineGlobal("clearInterval", cancel);
  function earliest() {
    let found = null;
    for (const [id, timer] of scheduled) {
      if (found === null || timer.due < found[1].due) found = [id, timer];
    }
    return found;
  }

  // --- the call -------------------------------------------------------------------------------------------------
  let main;
  let captureMain = true;
  // The code's module ends with a call of this (jsworker.py appends it), handing over its `main`.
  Object.defineProperty(globalThis, "__knotflow_main__", {
    value: (found) => {
      if (captureMain) main = found;
      captureMain = false;
    },
  });
  let outcome = null; // {ok, kind, message, traceback, line}
  let data = null; // the output's JSON text

  const named = (text) => text.replace(/<input>:(\d+)/g, "<code>:$1");
  const isOutOfMemory = (error) => error instanceof InternalError && error.message === "out of memory";
  function describe(error) {
    if (error instanceof Error) {
      // The runner's own frames say nothing to the user: every function of this file that may be on the stack when
      // the code's error is made (it calls the code, or throws for it) has "knotflow" in its name.
      const frames = String(error.stack ?? "")
        .split("\n")
        .filter((frame) => frame.trim() !== "" && !frame.includes("knotflow"));
      const stack = named([`${error.name}: ${error.message}`, ...frames].join("\n"));
      const line = /<code>:(\d+)/.exec(stack);
      return { message: `${error.name}: ${error.message}`, traceback: stack, line: line ? Number(line[1]) : null };
    }
    const shown = typeof error === "string" ? stringify(error) : render(error);
    return { message: `Uncaught ${shown}`, traceback: "", line: null };
  }
  function fail(error) {
    if (outcome !== null) return;
    if (isOutOfMemory(error)) {
      outcome = { ok: false, kind: "memory", message: `JavaScript heap out of memory (limit ${config.memory_mb} MB)` };
    } else {
      outcome = { ok: false, kind: "exception", ...describe(error) };
    }
  }
  function invalid(message) {
    outcome = { ok: false, kind: "invalid_output", message };
  }
  function finish(result) {
    if (outcome !== null) return;
    if (result === null || typeof result !== "object" || Array.isArray(result)) {
      const type = result === null ? "null" : Array.isArray(result) ? "array" : typeof result;
      return invalid(`main must return an object, not ${type}`);
    }
    let text;
    try {
      text = stringify(result);
    } catch (error) {
      return isOutOfMemory(error) ? fail(error) : invalid(`the output is not JSON: ${error}`);
    }
    if (typeof text !== "string" || text[0] !== "{") return invalid("main must return an object whose JSON is an object");
    data = text;
    outcome = { ok: true };
  }
  function start(module, paramsJson) {
    const params = JSON.parse(paramsJson);
    module.then(function knotflowCallMain() {
      if (typeof main === "undefined") throw new ReferenceError("main is not defined");
      if (typeof main !== "function") throw new TypeError("main is not a function");
      return main({ params });
    }).then(finish, fail);
  }
  function knotflowFire() {
    const next = earliest();
    if (next === null) return;
    const [id, timer] = next;
    if (timer.every === null) scheduled.delete(id);
    else timer.due = now() + timer.every;
    try {
      timer.callback(...timer.args);
    } catch (error) {
      fail(error); // as in Node or Deno, an error nobody catches in a timer ends the program: here, the call
    }
  }

  // The child's entry points, by name: it holds this function; nothing else of this file is reachable.
  return function knotflowHost(command, first, second) {
    switch (command) {
      case "start":
        return start(first, second);
      case "settled":
        return outcome !== null;
      case "next": {
        const next = earliest();
        return next === null ? -1 : Math.max(0, next[1].due - now());
      }
      case "fire":
        return knotflowFire();
      case "outcome":
        return flat(stringify(outcome));
      case "data":
        return flat(data);
      case "stdout":
        return flat(captured);
      case "truncated":
        return truncated;
      default:
        throw new Error(`unknown command ${command}`);
    }
  };
});
