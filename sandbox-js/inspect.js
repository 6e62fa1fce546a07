// console.log's rendering of values that are not text ({ a: 1 }, [ 1, 2 ], Map (1) {…}), as Node prints them;
// loaded into each call's QuickJS context.
import inspect from "object-inspect";

globalThis.knotflowInspect = inspect;
