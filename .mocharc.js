// mocha's settings. `npm test` runs every test file under dist/test; `npx mocha dist/test/x/y.test.js` runs only
// the files named (mocha would otherwise add the named files to the configured spec and run everything).
'use strict';
const named = process.argv.slice(2).some((a) => /\.test\.js$/.test(a));
module.exports = {
  spec: named ? [] : ['dist/test/**/*.test.js'],
  timeout: 120000,
  reporter: 'spec',
  exit: true,
};
