#!/bin/sh
# `npm run build`: dist/ from src/, made afresh so that nothing stale stays committed.
# - dist/index.js, the action (main and post steps), and dist/cli/index.js, the command line;
# - beside each, ssh2/index.js: ssh2 bundled on its own, loaded for ssh:// engines only
#   (src/engine/deferred/ssh2.js);
# - no native add-on (scripts/drop-native-addons.mjs).
set -eu
rm -rf dist
ncc build src/action/index.ts -o dist --minify --license licenses.txt
ncc build src/cli/index.ts -o dist/cli --minify
for out in dist/ssh2 dist/cli/ssh2; do
  ncc build node_modules/ssh2/lib/index.js -o "$out" --minify --license licenses.txt
done
node scripts/drop-native-addons.mjs dist
