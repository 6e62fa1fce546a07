// TypeScript to JavaScript for the Code node: Sucrase strips the types (and compiles enums and parameter
// properties) keeping every line where it was, so that the line numbers in the code's errors are the user's own.
// The template's QuickJS context holds it; each call's child transpiles its code with it.
import { transform } from "sucrase";

// The join makes the text one flat string: QuickJS keeps a long concatenation as a rope, which the Python binding
// cannot take back (TypeError: Unknown quickjs tag: -6).
globalThis.knotflowTranspile = (code) =>
  [transform(code, { transforms: ["typescript"], disableESTransforms: true }).code].join("");
