// Kept equal to package.json's version by test/package.test.mjs.
export const VERSION = "0.1.0";
