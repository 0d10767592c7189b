// Stands in for ssh2 in the bundle (tsconfig.json "paths", which ncc follows for every module it
// bundles). docker-modem requires ssh2 as it loads, though only ssh:// endpoints use it, and ssh2
// costs every run about 30 ms of CPU and 5 MB at start-up. docker-modem takes only Client from it,
// so ssh2 is loaded when the first Client is made.
exports.Client = function Client(...args) {
  const { Client: Real } = require('ssh2/lib/index.js')
  return new Real(...args)
}
